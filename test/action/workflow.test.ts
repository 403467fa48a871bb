// The reusable workflow (.github/workflows/build.yml), checked with GitHub's own parser
// (@actions/workflow-parser: the schema, the expressions) and its expression evaluator; the
// plan step's script run with bash and jq as the runner runs it (GITHUB_OUTPUT file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

// The parser imports its JSON schema without an import attribute (it is made for bundlers).
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    return r.url.endsWith('.json') ? { ...r, importAttributes: { ...context.importAttributes, type: 'json' } } : r;
  },
});
const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import('@actions/workflow-parser');
const { Lexer, Parser, Evaluator, data } = await import('@actions/expressions');

const root = new URL('../../', import.meta.url).pathname;
const text = readFileSync(join(root, '.github/workflows/build.yml'), 'utf8');

interface Step { id?: string; uses?: string; run?: string; if?: string; with?: Record<string, string>; env?: Record<string, string> }
interface Job { needs?: string; 'runs-on': string; outputs?: Record<string, string>; steps: Step[]; strategy?: { matrix: Record<string, string> } }
interface Workflow {
  on: { workflow_call: { inputs: Record<string, { type: string; default?: unknown; required?: boolean }>; outputs: Record<string, { value: string }> } };
  jobs: Record<string, Job>;
}
const wf = parse(text) as Workflow;
const action = parse(readFileSync(join(root, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> };

function errorsOf(content: string): string[] {
  const r = parseWorkflow({ name: 'build.yml', content }, new NoOperationTraceWriter());
  return r.context.errors.getErrors().map((e) => e.message);
}

/** Evaluates a `${{ … }}` expression with the given contexts. */
function evaluate(expression: string, contexts: Record<string, unknown>): string {
  const body = /^\$\{\{\s*([\s\S]*?)\s*\}\}$/.exec(expression)?.[1] ?? expression;
  const toData = (v: unknown): InstanceType<typeof data.Dictionary> | InstanceType<typeof data.StringData> => (typeof v === 'string'
    ? new data.StringData(v)
    : new data.Dictionary(...Object.entries(v as Record<string, unknown>).map(([key, value]) => ({ key, value: toData(value) }))));
  const expr = new Parser(new Lexer(body).lex().tokens, Object.keys(contexts), []).parse();
  return new Evaluator(expr, toData(contexts) as InstanceType<typeof data.Dictionary>).evaluate().coerceString();
}

test("GitHub's parser accepts the reusable workflow, and rejects a broken copy", async () => {
  assert.deepEqual(errorsOf(text), []);
  const broken = errorsOf(text.replace('    runs-on: ubuntu-24.04\n', '    runs-onn: ubuntu-24.04\n').replace('fromJSON(inputs.runners)[matrix.platform]', 'fromJSON(inputs.runners[matrix.platform]'));
  assert.ok(broken.some((e) => /Unexpected value 'runs-onn'/.test(e)), broken.join('\n'));
  assert.ok(broken.some((e) => /Unexpected symbol/.test(e)), broken.join('\n'));
  const r = parseWorkflow({ name: 'build.yml', content: text }, new NoOperationTraceWriter());
  const template = await convertWorkflowTemplate(r.context, r.value!);
  assert.equal(template.errors, undefined);
  assert.deepEqual(template.jobs.map((j) => j.id.value), ['plan', 'build']);
  assert.ok(template.events.workflow_call, 'on: workflow_call');
});

test('inputs mirror the action: each goes to the action step as it is; every with: key is an action input', () => {
  const inputs = wf.on.workflow_call.inputs;
  for (const name of ['context', 'file', 'platforms', 'tags', 'build-args', 'push', 'target', 'labels', 'annotations', 'no-cache', 'cache', 'provenance', 'sbom']) assert.ok(inputs[name], `input ${name}`);
  const build = wf.jobs.build;
  const step = build.steps.find((s) => s.uses?.endsWith('/slipway@v1'))!;
  for (const key of Object.keys(step.with!)) assert.ok(key in action.inputs, `${key} is an input of action.yml`);
  for (const name of Object.keys(inputs)) if (name in action.inputs && name !== 'platforms') assert.equal(step.with![name], `\${{ inputs.${name} }}`, name);
  assert.equal(step.with!.platforms, '${{ matrix.platform }}');
  assert.equal(step.with!['merge-platforms'], '${{ needs.plan.outputs.merge-platforms }}');
  assert.equal(inputs.runners.default, '{"linux/amd64": "ubuntu-24.04", "linux/arm64": "ubuntu-24.04-arm"}');
});

test('one native job per platform: runs-on from the runner map, the index digest as the output', () => {
  const build = wf.jobs.build;
  assert.equal(build.needs, 'plan');
  assert.equal(build.strategy!.matrix.platform, '${{ fromJSON(needs.plan.outputs.platforms) }}');
  const runners = wf.on.workflow_call.inputs.runners.default as string;
  assert.equal(evaluate(build['runs-on'], { inputs: { runners }, matrix: { platform: 'linux/amd64' } }), 'ubuntu-24.04');
  assert.equal(evaluate(build['runs-on'], { inputs: { runners }, matrix: { platform: 'linux/arm64' } }), 'ubuntu-24.04-arm');
  // The output: set only by the job whose digest is not its platform manifest's (the one that wrote the index).
  assert.equal(wf.on.workflow_call.outputs.digest.value, '${{ jobs.build.outputs.digest }}');
  assert.equal(build.outputs!.digest, '${{ steps.index.outputs.digest }}');
  const index = build.steps.find((s) => s.id === 'index')!;
  const outputs = (digest: string) => ({ steps: { build: { outputs: { digest, 'platform-digests': '{"linux/arm64":"sha256:aaa"}' } } }, matrix: { platform: 'linux/arm64' } });
  assert.equal(evaluate(index.if!, outputs('sha256:index')), 'true');
  assert.equal(evaluate(index.if!, outputs('sha256:aaa')), 'false');
});

test('the plan step, run as the runner runs it: platforms as a JSON list, missing runner labels refused', () => {
  const step = wf.jobs.plan.steps.find((s) => s.id === 'plan')!;
  const run = (platforms: string, runners = wf.on.workflow_call.inputs.runners.default as string) => {
    const out = join(mkdtempSync(join(tmpdir(), 'slipway-plan-')), 'output');
    const r = spawnSync('bash', ['-e', '-c', step.run!], { env: { PATH: process.env.PATH, PLATFORMS: platforms, RUNNERS: runners, GITHUB_OUTPUT: out }, encoding: 'utf8' });
    let written = '';
    try { written = readFileSync(out, 'utf8'); } catch { /* nothing written */ }
    return { status: r.status, stdout: r.stdout, output: written };
  };
  const ok = run('linux/arm64, linux/amd64\nlinux/amd64');
  assert.equal(ok.status, 0);
  assert.equal(ok.output, 'platforms=["linux/amd64","linux/arm64"]\nmerge-platforms=linux/amd64,linux/arm64\n');
  const missing = run('linux/amd64,linux/s390x');
  assert.equal(missing.status, 1);
  assert.match(missing.stdout, /::error::no runner label for linux\/s390x in the runners input/);
  assert.equal(run(' , ').status, 1);
});

// The GitLab CI/CD component (templates/build.yml): its spec parsed as YAML, its inputs interpolated
// as GitLab does it ($[[ inputs.NAME ]]: a whole value takes the input as it is, e.g. the matrix
// array; inside a string, its text), and each parallel:matrix job's before_script and script lines
// run, unchanged, in a default Docker container as the runner runs them (one shell, the job's
// variables and the matrix entry in the environment), against the real registry. The job that
// pushes the last platform writes the index.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { buildTestImage, dockerMissing, projectDir, projectNode, runInContainer, startDocker, stopDocker, type DockerDaemon } from '../harness/docker.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { packAndInstall } from '../harness/npm-package.ts';

const file = join(projectDir, 'templates/build.yml');
const [specDoc, bodyDoc] = parseAllDocuments(readFileSync(file, 'utf8'));
type Inputs = Record<string, { default?: unknown; type?: string; description?: string }>;
const spec = specDoc.toJS() as { spec: { inputs: Inputs } };

interface Job {
  stage: string; image: string; tags: string[]; variables: Record<string, string>;
  parallel: { matrix: Array<Record<string, string>> }; before_script: string[]; script: string[];
}

/** GitLab's interpolation of `$[[ inputs.NAME ]]`; an unknown name is an error, as GitLab makes it. */
function interpolate(node: unknown, values: Record<string, unknown>): unknown {
  const ref = /\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g;
  const value = (name: string) => {
    if (!(name in spec.spec.inputs)) throw new Error(`unknown input ${name}`);
    return name in values ? values[name] : spec.spec.inputs[name].default;
  };
  if (typeof node === 'string') {
    const whole = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/.exec(node);
    if (whole) return value(whole[1]);
    return node.replace(ref, (_, n: string) => String(value(n)));
  }
  if (Array.isArray(node)) return node.map((n) => interpolate(n, values));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [interpolate(k, values) as string, interpolate(v, values)]));
  return node;
}

function job(values: Record<string, unknown> = {}): { name: string; job: Job } {
  const body = interpolate(bodyDoc.toJS(), values) as Record<string, Job>;
  const names = Object.keys(body);
  assert.equal(names.length, 1);
  return { name: names[0], job: body[names[0]] };
}

test('the component: spec inputs with defaults, one parallel:matrix job tagged by its matrix entry', () => {
  assert.equal(specDoc.errors.length + bodyDoc.errors.length, 0);
  for (const [name, input] of Object.entries(spec.spec.inputs)) assert.ok(input.description, `${name} has a description`);
  const { name, job: j } = job();
  assert.equal(name, 'build-image');
  assert.deepEqual(j.parallel.matrix, [{ PLATFORM: 'linux/amd64', RUNNER_TAG: 'saas-linux-small-amd64' }, { PLATFORM: 'linux/arm64', RUNNER_TAG: 'saas-linux-small-arm64' }]);
  assert.deepEqual(j.tags, ['$RUNNER_TAG']);
  for (const entry of j.parallel.matrix) assert.ok(String(spec.spec.inputs.platforms.default).split(',').includes(entry.PLATFORM));
  assert.equal(j.variables.SLIPWAY_PLATFORMS, 'linux/amd64,linux/arm64');
  assert.ok(j.script.at(-1)!.startsWith('slipway build '));
  assert.ok(j.before_script.some((l) => l.includes('npm install -g')), 'the job installs the npm package');
  const named = job({ 'job-name': 'image', matrix: [{ PLATFORM: 'linux/s390x', RUNNER_TAG: 'z' }] });
  assert.equal(named.name, 'image');
  assert.deepEqual(named.job.parallel.matrix, [{ PLATFORM: 'linux/s390x', RUNNER_TAG: 'z' }]);
  assert.throws(() => interpolate('$[[ inputs.nope ]]', {}), /unknown input nope/);
});

const skip = registryMissing() ?? fixturesMissing() ?? dockerMissing() ?? (existsSync(join(projectDir, 'dist/cli.js')) ? undefined : 'dist/cli.js is not built (npm run build)');
let reg: TestRegistry;
let docker: DockerDaemon;
let image: string;
let busybox: string;
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
  docker = await startDocker();
  image = buildTestImage(docker);
});
after(async () => {
  if (docker) await stopDocker();
  await reg?.stop();
});

test('each matrix job\'s script lines, unchanged, in a default container: the last one writes the index', { skip, timeout: 600_000 }, async () => {
  const pkg = await packAndInstall();
  chmodSync(dirname(pkg.tarball), 0o755);
  const ctx = mkdtempSync(join(tmpdir(), 'slipway-component-'));
  chmodSync(ctx, 0o755);
  writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nARG GREETING\nCOPY app.txt /app.txt\nLABEL greeting=$GREETING\n`);
  writeFileSync(join(ctx, 'app.txt'), 'app\n');
  const { job: j } = job({ tags: `${reg.host}/group/project:abc1234,${reg.host}/group/project:main`, 'build-args': 'GREETING=hi' });
  const ci = { CI_REGISTRY: reg.host, CI_REGISTRY_USER: 'gitlab-ci-token', CI_REGISTRY_PASSWORD: 'unused-by-an-open-registry', CI_PIPELINE_ID: '4242' };
  const logs: string[] = [];
  for (const entry of j.parallel.matrix) {
    const out = mkdtempSync(join(tmpdir(), 'slipway-component-out-'));
    chmodSync(out, 0o755);
    mkdirSync(join(out, 'opt'), { recursive: true });
    writeFileSync(join(out, 'job.sh'), ['set -e', ...j.before_script, ...j.script].join('\n') + '\n');
    // The slipway command as before_script's `npm install -g` puts it in a prefix (no registry here).
    const r = runInContainer(docker, ['/bin/sh', '/out/job.sh'], {
      image, network: 'host', binds: [`${ctx}:/ctx`, `${out}:/out`, `${pkg.prefix}:/opt/npm-global:ro`, `${projectNode}:/usr/local/bin/node:ro`, '/bin/busybox:/usr/bin/env:ro'],
      env: { PATH: '/opt/npm-global/bin:/usr/local/bin:/usr/bin:/bin', HOME: '/root', ...ci, ...j.variables, ...entry }, workdir: '/ctx', timeoutMs: 300_000,
    });
    assert.equal(r.status, 0, `${entry.PLATFORM}:\n${r.stdout}\n${r.stderr}`);
    logs.push(r.stderr);
  }
  assert.match(logs[0], /merge 4242: still missing linux\/arm64/);
  assert.match(logs[1], /merge 4242: every platform is pushed/);
  for (const tag of ['abc1234', 'main']) {
    const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/group/project:${tag}`], { encoding: 'utf8' })) as { manifests: Array<{ platform: { architecture: string } }> };
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64'], tag);
  }
  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', '--tls-verify=false', '--override-arch', 'arm64', `docker://${reg.host}/group/project:main`], { encoding: 'utf8' })) as { config: { Labels: Record<string, string> } };
  assert.equal(config.config.Labels.greeting, 'hi', 'the build args reached the build');
  assert.ok(existsSync(join(ctx, 'build.json')) && existsSync(join(ctx, '.slipway-cache')), 'the artifact and the cache dir the job keeps');
});

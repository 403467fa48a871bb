// The action's `context` input takes what the CLI takes: a tarball URL (a local HTTP server), a
// plain Dockerfile URL, and git (a file:// remote, #ref:subdir), each fetched once and removed after;
// and the `ssh` input reaches the request as --ssh does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prepareActionContext } from '../../src/action/context.ts';
import { settingsFromInputs } from '../../src/action/inputs.ts';
import { elevatedFlag, ownerVariable } from '../../src/action/privilege.ts';
import { unpackOci } from '../engine/helpers.ts';
import { ensureBundle, newJob, run, runStep, type StepRun } from './helpers.ts';

const explain = (r: StepRun) => `exit ${r.code}\n${r.stdout}\n${r.stderr}`;

describe('action: remote contexts', () => {
  let server: Server;
  let base = '';
  let bare = '';

  before(async () => {
    await ensureBundle();
    const top = mkdtempSync(join(tmpdir(), 'slipway-action-ctx-'));
    const ctx = join(top, 'ctx');
    mkdirSync(join(ctx, 'sub'), { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY sub/file.txt /from-tarball.txt\n');
    writeFileSync(join(ctx, 'sub', 'file.txt'), 'tarball\n');
    const www = join(top, 'www');
    mkdirSync(www);
    await run('sh', ['-c', `tar -C ${ctx} -cf - . | gzip > ${join(www, 'ctx.tar.gz')}`]);
    writeFileSync(join(www, 'Dockerfile'), 'FROM scratch\nLABEL from=url\n');
    server = createServer((req, res) => {
      const file = join(www, (req.url ?? '/').slice(1));
      if (!existsSync(file)) return res.writeHead(404).end();
      res.writeHead(200).end(readFileSync(file));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const work = join(top, 'work');
    mkdirSync(join(work, 'app'), { recursive: true });
    writeFileSync(join(work, 'app', 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /from-git.txt\n');
    writeFileSync(join(work, 'app', 'hello.txt'), 'git\n');
    const git = (...args: string[]) => run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
    await run('git', ['init', '-q', '-b', 'main', work]);
    await git('add', '.');
    await git('commit', '-qm', 'one');
    bare = join(top, 'repo.git');
    await run('git', ['clone', '-q', '--bare', work, bare]);
  });
  after(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  const build = async (context: string, extra: Record<string, string> = {}) => {
    const job = newJob({ 'README.md': 'no Dockerfile in the workspace\n' });
    const r = await runStep('main', job, { inputs: { context, outputs: 'type=oci,dest=out.tar', cache: 'false', ...extra } });
    assert.equal(r.code, 0, explain(r));
    const tmp = join(job.runnerTemp, 'slipway-cache', 'tmp');
    assert.deepEqual(existsSync(tmp) ? readdirSync(tmp) : [], [], 'the fetched context is removed after the build');
    return { out: join(job.workspace, 'out.tar'), r };
  };

  test('a tarball URL is the context', async () => {
    const { out } = await build(`${base}/ctx.tar.gz`);
    const bundle = await unpackOci(out);
    assert.equal(readFileSync(join(bundle, 'rootfs', 'from-tarball.txt'), 'utf8'), 'tarball\n');
  });

  test('a URL of a plain Dockerfile builds with an empty context', async () => {
    const { out } = await build(`${base}/Dockerfile`);
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
    assert.equal(JSON.parse(stdout).config.Labels.from, 'url');
  });

  test('a git URL with #ref:subdir is the context, and `file` is read inside it', async () => {
    const { out } = await build(`file://${bare}#main:app`, { file: 'Dockerfile' });
    const bundle = await unpackOci(out);
    assert.equal(readFileSync(join(bundle, 'rootfs', 'from-git.txt'), 'utf8'), 'git\n');
  });

  test('the process started through sudo gets the fetched directory in INPUT_CONTEXT/INPUT_FILE and fetches nothing again', async () => {
    const job = newJob({});
    const inputs: Record<string, string> = { context: `file://${bare}#main:app`, file: 'Dockerfile' };
    const env = { RUNNER_TEMP: job.runnerTemp };
    const context = await prepareActionContext((n) => inputs[n] ?? '', env, job.workspace);
    try {
      assert.match(context.env.INPUT_CONTEXT, /slipway-cache\/tmp\/context-/);
      assert.equal(context.env.INPUT_FILE, join(context.env.INPUT_CONTEXT, 'Dockerfile'));
      assert.equal(context.input('context'), context.env.INPUT_CONTEXT);
      // What runMain hands to sudo: its environment with those two variables replaced.
      const handed: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root',
        GITHUB_WORKSPACE: job.workspace, RUNNER_TEMP: job.runnerTemp,
        GITHUB_OUTPUT: job.files.output, GITHUB_STATE: job.files.state, GITHUB_STEP_SUMMARY: job.files.summary,
        INPUT_CONTEXT: inputs.context, INPUT_FILE: inputs.file, INPUT_OUTPUTS: 'type=oci,dest=out.tar', INPUT_CACHE: 'false', [ownerVariable]: '0:0',
        ...context.env,
      };
      // The repository is gone: a second fetch would fail the build.
      const moved = `${bare}.moved`;
      await run('mv', [bare, moved]);
      try {
        const r = await runStep('main', job, { env: { [elevatedFlag]: '1' }, stdin: JSON.stringify(handed) });
        assert.equal(r.code, 0, explain(r));
      } finally {
        await run('mv', [moved, bare]);
      }
      const bundle = await unpackOci(join(job.workspace, 'out.tar'));
      assert.equal(readFileSync(join(bundle, 'rootfs', 'from-git.txt'), 'utf8'), 'git\n');
    } finally {
      await context.cleanup();
    }
    assert.deepEqual(readdirSync(join(job.runnerTemp, 'slipway-cache', 'tmp')), [], 'cleanup removes the fetched context');
  });

  test('a context that cannot be fetched fails the step with one error naming it; "-" is refused', async () => {
    const job = newJob({});
    const r = await runStep('main', job, { inputs: { context: `${base}/missing.tar.gz`, cache: 'false' } });
    assert.equal(r.code, 1, explain(r));
    assert.equal(r.errors.length, 1, explain(r));
    assert.match(r.errors[0], /missing\.tar\.gz/);
    const dash = await runStep('main', newJob({}), { inputs: { context: '-', cache: 'false' } });
    assert.equal(dash.code, 1);
    assert.match(dash.errors[0] ?? '', /input "context" is "-", but an action step has no standard input/);
  });
});

describe('action: the ssh input', () => {
  test('one value per line reaches the request as --ssh; default needs SSH_AUTH_SOCK', async () => {
    const ws = mkdtempSync(join(tmpdir(), 'slipway-action-ssh-'));
    writeFileSync(join(ws, 'Dockerfile'), 'FROM scratch\n');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ws, 'key')]);
    const sock = join(ws, 'agent.sock');
    const agent = createServer().listen(sock);
    await new Promise((r) => agent.once('listening', r));
    try {
      const request = settingsFromInputs((n) => ({ ssh: 'default\ndeploy=key' } as Record<string, string>)[n] ?? '', { SSH_AUTH_SOCK: sock }, ws).request;
      assert.deepEqual(request.ssh.map((s) => [s.id, 'socket' in s.source ? s.source.socket : s.source.keys.length]), [['default', sock], ['deploy', 1]]);
      const r = await runStep('main', newJob({ Dockerfile: 'FROM scratch\n' }), { inputs: { ssh: 'default', cache: 'false' }, env: { SSH_AUTH_SOCK: '' } });
      assert.equal(r.code, 1, explain(r));
      assert.match(r.errors[0] ?? '', /--ssh default: SSH_AUTH_SOCK is not set/);
    } finally {
      agent.close();
    }
  });
});

// RUN --mount=type=ssh end to end: a real ssh-agent holding a key made by ssh-keygen, and the host's
// own ssh-add (with its shared libraries, bound in from the context) listing it inside the step —
// through runc, crun and ptrace (proot) — and the same for key files served by slipway itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { opensshMissing, sshAddTools, startAgent } from '../harness/ssh.ts';
import { buildContext, makeContext, run, runMissing } from './helpers.ts';

const missing = registryMissing() ?? fixturesMissing() ?? runMissing() ?? opensshMissing();

/** Every entry of the image's own layers (not the base's), as `tar -tv` lists them. */
async function layerListing(tarFile: string, baseLayers: number): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-ssh-layers-'));
  try {
    await run('tar', ['-xf', tarFile, '-C', work]);
    const blob = (d: string) => join(work, 'blobs', ...d.split(':'));
    const index = JSON.parse(readFileSync(join(work, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    let out = '';
    for (const l of manifest.layers.slice(baseLayers)) out += (await run('tar', ['-tvzf', blob(l.digest)])).stdout;
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe('RUN --mount=type=ssh', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;
  let baseLayers: number;
  let home: string;
  let key: string;
  let fingerprint: string;
  let agent: { sock: string; child: ChildProcess };
  const agents: ChildProcess[] = [];

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'amd64', 'library/busybox:ssh')).ref;
    baseLayers = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${busybox}`])).stdout).layers.length;
    home = mkdtempSync(join(tmpdir(), 'slipway-ssh-'));
    key = join(home, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'slipway-test', '-f', key]);
    fingerprint = (await run('ssh-keygen', ['-lf', `${key}.pub`])).stdout.split(' ')[1];
    assert.match(fingerprint, /^SHA256:/);
    agent = await startAgent(home);
    agents.push(agent.child);
    await run('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: agent.sock } });
  });
  after(async () => {
    for (const a of agents) a.kill();
    await reg?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  const context = () => {
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nRUN --mount=type=ssh --mount=type=bind,source=tools,target=/t test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK" > /sock && /t/ld.so --library-path /t /t/ssh-add -l > /keys\n`,
    });
    sshAddTools(join(ctx, 'tools'));
    return ctx;
  };
  const fileOf = async (tarFile: string, name: string) => {
    const work = mkdtempSync(join(tmpdir(), 'slipway-ssh-out-'));
    try {
      await run('skopeo', ['copy', '-q', `oci-archive:${tarFile}`, `oci:${work}/l:x`]);
      await run('umoci', ['raw', 'unpack', '--image', `${work}/l:x`, `${work}/root`]);
      return readFileSync(join(work, 'root', name), 'utf8');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  };

  for (const isolation of ['runc', 'crun', 'ptrace'] as const) {
    test(`ssh-add -l inside the step lists the agent's key (${isolation}); the layer holds no socket and no mountpoint`, async (t) => {
      if (isolation === 'crun' && spawnSync('sh', ['-c', 'command -v crun']).status !== 0) return t.skip('crun is not installed');
      if (isolation === 'ptrace' && spawnSync('sh', ['-c', 'command -v proot']).status !== 0) return t.skip('proot is not installed');
      const ctx = context();
      const out = join(ctx, 'o.tar');
      await buildContext(ctx, { ssh: ['default'], env: { SSH_AUTH_SOCK: agent.sock }, isolation, outputs: [`type=oci,dest=${out}`] });
      assert.equal(await fileOf(out, 'sock'), '/run/buildkit/ssh_agent.0\n');
      const keys = await fileOf(out, 'keys');
      assert.ok(keys.includes(fingerprint) && keys.includes('slipway-test'), `ssh-add -l printed ${keys}`);
      const listing = await layerListing(out, baseLayers);
      assert.match(listing, /keys/);
      assert.doesNotMatch(listing, /run\/|ssh_agent|^s/m, 'no socket, no /run/buildkit in the layer');
      assert.ok(!listing.includes(' t/'), 'the bind mountpoint is gone too');
    });
  }

  test('the step key holds the id, not the socket: another agent at another path (or key files) is a cache hit', async () => {
    const ctx = context();
    const cacheDir = join(ctx, 'cache');
    const first = await buildContext(ctx, { ssh: ['default'], env: { SSH_AUTH_SOCK: agent.sock }, cacheDir, outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    assert.deepEqual(first.result.steps, { cached: 0, run: 1 });
    const other = await startAgent(home);
    agents.push(other.child);
    assert.notEqual(other.sock, agent.sock);
    const second = await buildContext(ctx, { ssh: [`default=${other.sock}`], env: {}, cacheDir, outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    assert.deepEqual(second.result.steps, { cached: 1, run: 0 });
    const third = await buildContext(ctx, { ssh: [`default=${key}`], env: {}, cacheDir, outputs: ['type=oci,dest=' + join(ctx, '3.tar')] });
    assert.deepEqual(third.result.steps, { cached: 1, run: 0 });
  });

  test('key files are served by slipway\'s own agent: ssh-add -l in the step lists each of them', async () => {
    const rsa = join(home, 'id_rsa');
    await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-N', '', '-C', 'rsa-test', '-f', rsa]);
    const rsaPrint = (await run('ssh-keygen', ['-lf', `${rsa}.pub`])).stdout.split(' ')[1];
    const ctx = context();
    const out = join(ctx, 'k.tar');
    await buildContext(ctx, { ssh: [`default=${key},${rsa}`], env: {}, outputs: [`type=oci,dest=${out}`] });
    const keys = await fileOf(out, 'keys');
    assert.ok(keys.includes(fingerprint) && keys.includes(rsaPrint), `ssh-add -l printed ${keys}`);
  });

  test('an optional ssh mount without an agent mounts nothing; required=true fails at the Dockerfile line, before the step is looked up in the cache', async () => {
    const optional = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --mount=type=ssh,id=deploy sh -c 'test ! -e /run/buildkit/ssh_agent.0 && echo none > /r'\n` });
    await buildContext(optional, { outputs: ['type=oci,dest=' + join(optional, 'o.tar')] });
    assert.equal(await fileOf(join(optional, 'o.tar'), 'r'), 'none\n');
    const required = makeContext({ Dockerfile: `FROM ${busybox}\nENV A=1\nRUN --mount=type=ssh,id=deploy,required=true true\n` });
    await assert.rejects(buildContext(required, { ssh: ['other=' + key], env: {}, outputs: [] }), (e: Error) => {
      assert.match(e.message, /Dockerfile:3: ssh agent "deploy" is required by RUN --mount=type=ssh but was not given/);
      assert.match((e as Error & { hint?: string }).hint ?? '', /--ssh deploy=/);
      return true;
    });
  });
});

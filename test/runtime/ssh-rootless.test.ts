// An ssh agent socket bound into a rootless step: an unprivileged user runs runc in a user namespace
// with slipway's in-process agent (serving a key made by ssh-keygen) bound at the ssh mount's target,
// and the host's ssh-add inside the step lists the key; the mountpoint is gone afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { opensshMissing, sshAddTools } from '../harness/ssh.ts';
import { busyboxRootfs, installedRuntimes, isRoot } from './helpers.ts';

const nobody = 65534;
const src = (p: string) => JSON.stringify(new URL(`../../src/${p}`, import.meta.url).href);
const script = (dir: string, rootfs: string) => `
import { readFileSync } from 'node:fs';
import { runStep } from ${src('runtime/index.ts')};
import { detectRuntime } from ${src('runtime/detect.ts')};
import { parsePrivateKey, serveAgent } from ${src('ssh/index.ts')};
const dir = ${JSON.stringify(dir)};
const agent = await serveAgent({ keys: [parsePrivateKey(readFileSync(dir + '/key', 'utf8'), 'key')] }, dir + '/agent.sock', { mode: 0o600, uid: 0, gid: 0 });
let out = '';
const r = await runStep({ runtime: detectRuntime('runc'), rootfs: ${JSON.stringify(rootfs)}, workDir: dir, rootless: true,
  args: ['/bin/sh', '-c', 'test -S /run/buildkit/ssh_agent.0 && /t/ld.so --library-path /t /t/ssh-add -l'],
  env: ['SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0'], cwd: '/', user: { uid: 0, gid: 0 }, network: 'none',
  mounts: [{ type: 'bind', source: agent.path, target: '/run/buildkit/ssh_agent.0', readonly: false }, { type: 'bind', source: dir + '/tools', target: '/t', readonly: true }],
  stdout: (c) => (out += c), stderr: (c) => (out += c) });
await agent.close();
console.log(JSON.stringify({ exitCode: r.exitCode, out }));
`;

test('rootless: ssh-add -l inside the step reaches the agent socket bound at the ssh target', (t) => {
  if (!isRoot) return t.skip('needs root to switch to an unprivileged user for the test');
  if (!installedRuntimes().includes('runc')) return t.skip('runc is not installed');
  const why = opensshMissing();
  if (why) return t.skip(why);
  if (spawnSync('setpriv', [`--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', 'unshare', '--user', '--map-root-user', 'true']).status !== 0) {
    return t.skip('unprivileged user namespaces are disabled on this machine (or setpriv is missing)');
  }
  const fs = busyboxRootfs('/bin/busybox');
  t.after(fs.cleanup);
  chmodSync(fs.dir, 0o755);
  sshAddTools(join(fs.dir, 'tools'));
  const key = join(fs.dir, 'key');
  assert.equal(spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'rootless-key', '-f', key]).status, 0);
  const fingerprint = spawnSync('ssh-keygen', ['-lf', `${key}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1];
  const own = (p: string) => {
    chownSync(p, nobody, nobody);
    if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) own(join(p, n));
  };
  own(fs.dir);
  const r = spawnSync('setpriv', [`--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script(fs.dir, fs.rootfs)], { encoding: 'utf8', cwd: fs.dir, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(res.exitCode, 0, res.out);
  assert.ok(res.out.includes(fingerprint) && res.out.includes('rootless-key'), res.out);
  assert.equal(existsSync(join(fs.rootfs, 'run')), false, 'the socket\'s mountpoint (and /run) is removed after the step');
});

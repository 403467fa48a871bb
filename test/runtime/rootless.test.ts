import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxRootfs, installedRuntimes, isRoot } from './helpers.ts';

const nobody = 65534;
const script = (rootfs: string, workDir: string) => `
import { runStep } from ${JSON.stringify(new URL('../../src/runtime/index.ts', import.meta.url).href)};
import { detectRuntime } from ${JSON.stringify(new URL('../../src/runtime/detect.ts', import.meta.url).href)};
let out = '';
const r = await runStep({ runtime: detectRuntime('runc'), rootfs: ${JSON.stringify(rootfs)}, workDir: ${JSON.stringify(workDir)},
  args: ['/bin/sh', '-c', 'id -u; ls /sys/class/net; echo made > /made; exit 5'], env: [], cwd: '/', user: { uid: 0, gid: 0 }, network: 'none',
  stdout: (c) => (out += c), stderr: (c) => (out += c) });
let refused = '';
try { await runStep({ runtime: detectRuntime('runc'), rootfs: ${JSON.stringify(rootfs)}, workDir: ${JSON.stringify(workDir)}, args: ['/bin/true'], env: [], cwd: '/', user: { uid: 1000, gid: 1000 }, network: 'none' }); }
catch (e) { refused = e.message; }
const privileged = [];
for (const extra of [{ insecure: true }, { cdi: { env: [], deviceNodes: [{ path: '/dev/x', type: 'c', major: 1, minor: 5, permissions: 'rwm' }], mounts: [] } }]) {
  try { await runStep({ runtime: detectRuntime('runc'), rootfs: ${JSON.stringify(rootfs)}, workDir: ${JSON.stringify(workDir)}, args: ['/bin/true'], env: [], cwd: '/', user: { uid: 0, gid: 0 }, network: 'none', ...extra }); privileged.push('ran'); }
  catch (e) { privileged.push(e.message); }
}
console.log(JSON.stringify({ exitCode: r.exitCode, out, refused, privileged }));
`;

test('rootless: a non-root user runs a step with runc in a user namespace', (t) => {
  if (!isRoot) return t.skip('needs root to switch to an unprivileged user for the test');
  if (!installedRuntimes().includes('runc')) return t.skip('runc is not installed');
  if (spawnSync('setpriv', ['--version']).status !== 0) return t.skip('setpriv (util-linux) is not installed');
  if (spawnSync('setpriv', [`--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', 'unshare', '--user', '--map-root-user', 'true']).status !== 0) {
    return t.skip('unprivileged user namespaces are disabled on this machine');
  }
  const fs = busyboxRootfs('/bin/busybox');
  t.after(fs.cleanup);
  chmodSync(fs.dir, 0o755);
  const own = (p: string) => {
    chownSync(p, nobody, nobody);
    if (lstatSync(p).isDirectory()) for (const n of readdirSync(p)) own(join(p, n));
  };
  own(fs.dir);
  const r = spawnSync('setpriv', [`--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups', process.execPath, '--input-type=module', '-e', script(fs.rootfs, fs.dir)], { encoding: 'utf8', cwd: fs.dir, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  assert.equal(res.exitCode, 5);
  assert.equal(res.out, '0\nlo\n');
  assert.equal(statSync(join(fs.rootfs, 'made')).uid, nobody, 'files the step writes belong to the calling user on the host');
  assert.match(res.refused, /rootless RUN steps can only run as root inside the container/);
  assert.match(res.privileged[0], /RUN --security=insecure cannot run privileged here: the rootless isolation runs steps in a user namespace/);
  assert.match(res.privileged[1], /RUN --device cannot pass a CDI device in here: the rootless isolation/);
});

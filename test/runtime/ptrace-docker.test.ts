// runStepPtrace inside an ordinary `docker run` container (default caps and seccomp, no --privileged):
// where mount and unshare fail, as on a GitLab Docker executor or in a Kubernetes pod.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, realpathSync } from 'node:fs';
import { buildTestImage, dockerMissing, ensurePackages, projectBindsInTmp, projectDir, projectNode, runInContainer, startDocker, stopDocker } from '../harness/docker.ts';
import { arm64Busybox } from './helpers.ts';

const skip = dockerMissing() ?? ensurePackages(['proot', 'busybox-static', 'qemu-user-static']) ?? false;

/** A script for the container's Node: makes a busybox rootfs in /tmp/r, runs steps, prints one JSON line. */
function stepScript(steps: string): string {
  return `
import { runStepPtrace, chooseIsolation } from '${projectDir}/src/runtime/index.ts';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
function rootfs(dir, busybox) {
  mkdirSync(dir + '/bin', { recursive: true });
  mkdirSync(dir + '/tmp');
  chmodSync(dir + '/tmp', 0o1777);
  copyFileSync(busybox, dir + '/bin/busybox');
  for (const a of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\\n')) if (a && a !== 'busybox') symlinkSync('busybox', dir + '/bin/' + a);
}
async function step(dir, script, extra = {}) {
  let out = '', err = '';
  const r = await runStepPtrace({ runtime: { name: 'runc', path: '' }, rootfs: dir, args: ['/bin/sh', '-c', script], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 }, network: 'host',
    stdout: (c) => (out += c), stderr: (c) => (err += c), ...extra });
  return { exitCode: r.exitCode, out, err };
}
const result = {};
${steps}
console.log(JSON.stringify(result));
`;
}

describe('runStepPtrace in an unprivileged docker container', { skip }, () => {
  after(() => stopDocker());

  test('runs steps with real ownership where mount and unshare fail', async () => {
    const d = await startDocker();
    const image = buildTestImage(d);
    const script = stepScript(`
result.mount = (() => { try { mkdirSync('/m1'); mkdirSync('/m2'); execFileSync('mount', ['--bind', '/m1', '/m2'], { stdio: 'pipe' }); return 'mounted'; } catch (e) { return String(e.stderr); } })();
result.unshare = (() => { try { execFileSync('unshare', ['-m', 'true'], { stdio: 'pipe' }); return 'unshared'; } catch (e) { return String(e.stderr); } })();
result.isolation = chooseIsolation('auto');
rootfs('/tmp/r', '/bin/busybox');
result.root = await step('/tmp/r', 'touch /owned; chown 1234:5678 /owned; ln -s owned /link; ln /owned /hard; echo out; echo err >&2; exit 3');
result.owned = [statSync('/tmp/r/owned').uid, statSync('/tmp/r/owned').gid, statSync('/tmp/r/hard').nlink, lstatSync('/tmp/r/link').isSymbolicLink()];
result.user = await step('/tmp/r', 'id; touch /tmp/u', { user: { uid: 1000, gid: 1001, additionalGids: [2000] } });
result.userFile = [statSync('/tmp/r/tmp/u').uid, statSync('/tmp/r/tmp/u').gid];
result.bg = await step('/tmp/r', 'sleep 1000 & echo started');
result.tree = readdirSync('/tmp/r').sort();
result.leftovers = readdirSync('/tmp').filter((n) => n !== 'r');
// Live processes only: an orphan that was killed stays a zombie of pid 1 until it is reaped.
result.sleeping = readdirSync('/proc').filter((p) => /^\\d+$/.test(p)).map((p) => { try { return readFileSync('/proc/' + p + '/stat', 'utf8'); } catch { return ''; } }).filter((st) => / \\(sleep\\) [^Z]/.test(st)).length;
${existsSync(arm64Busybox) ? `rootfs('/tmp/a', '/arm64-busybox'); result.arm64 = await step('/tmp/a', 'uname -m', { platform: { os: 'linux', architecture: 'arm64' } });` : ''}
`);
    const r = runInContainer(d, [projectNode, '--input-type=module', '-e', script], { image, binds: existsSync(arm64Busybox) ? [`${realpathSync(arm64Busybox)}:/arm64-busybox:ro`] : [] });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.match(res.mount, /permission denied|not permitted/i, 'mount fails in this container');
    assert.match(res.unshare, /not permitted/i, 'unshare fails in this container');
    assert.equal(res.isolation.mode, 'ptrace');
    assert.match(res.isolation.reason, /root cannot mount here/);
    assert.deepEqual(res.root, { exitCode: 3, out: 'out\n', err: 'err\n' });
    assert.deepEqual(res.owned, [1234, 5678, 2, true]);
    assert.equal(res.user.out, 'uid=1000 gid=1001 groups=2000\n', res.user.err);
    assert.deepEqual(res.userFile, [1000, 1001]);
    assert.equal(res.bg.exitCode, 0);
    assert.deepEqual(res.tree, ['bin', 'hard', 'link', 'owned', 'tmp'], 'no mountpoint stubs or proot files left');
    assert.deepEqual(res.leftovers.filter((n: string) => !projectBindsInTmp.includes(n)), [], 'no temp dirs left');
    assert.equal(res.sleeping, 0, 'the background process ended with the step');
    if (existsSync(arm64Busybox)) assert.deepEqual(res.arm64, { exitCode: 0, out: 'aarch64\n', err: '' }, 'QEMU through proot -q, no binfmt handler');
  });

  test('without setpriv, USER still gets its ids and groups (dropped through Node)', async () => {
    const d = await startDocker();
    const image = buildTestImage(d, { setpriv: false });
    const script = stepScript(`
rootfs('/tmp/r', '/bin/busybox');
result.user = await step('/tmp/r', 'id; touch /tmp/u', { user: { uid: 1000, gid: 1001, additionalGids: [2000, 3000] } });
result.userFile = [statSync('/tmp/r/tmp/u').uid, statSync('/tmp/r/tmp/u').gid];
result.setpriv = existsSync('/usr/bin/setpriv') ? 'util-linux' : lstatSync('/bin/setpriv').isSymbolicLink() ? 'busybox' : 'other';
`);
    const r = runInContainer(d, [projectNode, '--input-type=module', '-e', script], { image });
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(res.setpriv, 'busybox', "only BusyBox's setpriv, which cannot set ids");
    assert.equal(res.user.out, 'uid=1000 gid=1001 groups=2000,3000\n', res.user.err);
    assert.deepEqual(res.userFile, [1000, 1001]);
  });
});

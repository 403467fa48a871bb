// runStepPtrace on the host (root here): what a step writes must be what runc mode writes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseIsolation, prepareIsolation, runStep, runStepPtrace, type RunStepOptions } from '../../src/runtime/index.ts';
import { detectRuntime } from '../../src/runtime/detect.ts';
import { probePtrace, qemuForPlatform } from '../../src/runtime/ptrace/index.ts';
import { UserError } from '../../src/errors.ts';
import { arm64Busybox, busyboxRootfs, installedRuntimes, isRoot } from './helpers.ts';
import { ensurePackages } from '../harness/docker.ts';

const missing = isRoot ? ensurePackages(['proot']) : 'needs root (USER and chown run for real)';
const skip = missing ?? (probePtrace({ fresh: true }).ok ? false : `proot cannot run here: ${probePtrace().reason}`);
const runtime = { name: 'runc' as const, path: '/unused' };

async function run(rootfs: string, script: string, extra: Partial<RunStepOptions> = {}, via: 'ptrace' | 'runc' = 'ptrace') {
  let out = '';
  let err = '';
  const opts: RunStepOptions = {
    runtime, rootfs, args: ['/bin/sh', '-c', script], env: [], cwd: '/', user: { uid: 0, gid: 0 }, network: 'host',
    stdout: (c) => (out += c.toString()), stderr: (c) => (err += c.toString()), ...extra,
  };
  const r = via === 'ptrace' ? await runStepPtrace(opts) : await runStep({ ...opts, runtime: detectRuntime('runc') });
  return { ...r, out, err };
}

/** Every entry with what a layer diff records (type, mode, owner, size, content, link target, link count). */
function tree(root: string, withTimes = false): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      let what = '';
      if (st.isSymbolicLink()) what = `-> ${readlinkSync(p)}`;
      else if (st.isFile()) what = `${st.size} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 12)} n${st.nlink}`;
      out.push(`${rel}/${name} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${what}${withTimes ? ` ${st.mtimeMs}` : ''}`);
      if (st.isDirectory()) walk(p, `${rel}/${name}`);
    }
  };
  out.push(`/ ${statSync(root).mode.toString(8)}${withTimes ? ` ${statSync(root).mtimeMs}` : ''}`);
  walk(root, '');
  return out;
}

/** Live `sleep` processes whose command line contains `marker`. */
function processesWith(marker: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const state = /^State:\s*(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      if (cmd.startsWith('sleep ') && cmd.includes(marker) && state !== 'Z') hits.push(`${pid} ${cmd}`);
    } catch { /* gone */ }
  }
  return hits;
}

const changes = [
  'echo new > /new; mkdir -p /d/e; echo x > /d/e/f; chmod 640 /d/e/f',
  'echo changed >> /etc/conf; rm /etc/gone; rm -r /olddir',
  'touch /owned; chown 1234:5678 /owned; mkdir /odir; chown 42:43 /odir; chmod 2775 /odir',
  'ln -s ../etc/conf /d/link; ln /new /d/hard; mkfifo /d/fifo',
].join('; ');

function seedRootfs(rootfs: string): void {
  mkdirSync(join(rootfs, 'etc'));
  writeFileSync(join(rootfs, 'etc/conf'), 'a=1\n');
  writeFileSync(join(rootfs, 'etc/gone'), 'bye\n');
  mkdirSync(join(rootfs, 'olddir/sub'), { recursive: true });
  writeFileSync(join(rootfs, 'olddir/sub/f'), 'f');
}

describe('runStepPtrace', () => {
  test('output, exit codes and signals; proot notes stay out of stderr', { skip }, async () => {
    const fs = busyboxRootfs('/bin/busybox');
    try {
      const r = await run(fs.rootfs, 'echo hello from $0; echo oops >&2; exit 7');
      assert.equal(r.out, 'hello from /bin/sh\n');
      assert.equal(r.err, 'oops\n');
      assert.equal(r.exitCode, 7);
      assert.equal((await run(fs.rootfs, 'true')).exitCode, 0);
      const killed = await run(fs.rootfs, "ls / >/dev/null; sh -c 'kill -9 $$'; exit $?");
      assert.equal(killed.exitCode, 137, 'a command killed by a signal gives 128+n');
      assert.equal((await run(fs.rootfs, 'kill -TERM $$')).exitCode, 143, 'the main process killed by a signal');
      const late = await run(fs.rootfs, '(sleep 0.3; exit 9) & exit 4');
      assert.equal(late.exitCode, 4, 'the main process decides, not the last to exit');
      const multi = await run(fs.rootfs, 'printf "a\\nproot-like\\n"; printf "no newline" >&2\n# a second line\n', {});
      assert.equal(multi.out, 'a\nproot-like\n');
      assert.equal(multi.err, 'no newline', 'a multi-line argv note is taken out whole');
    } finally {
      fs.cleanup();
    }
  });

  test('writes the same tree as runc: new, changed, deleted files, chown, modes, symlink, hardlink', { skip: skip || (installedRuntimes().includes('runc') ? false : 'runc not installed') }, async () => {
    const a = busyboxRootfs('/bin/busybox');
    const b = busyboxRootfs('/bin/busybox');
    try {
      seedRootfs(a.rootfs);
      seedRootfs(b.rootfs);
      assert.deepEqual(tree(a.rootfs), tree(b.rootfs));
      const viaRunc = await run(a.rootfs, changes, {}, 'runc');
      const viaPtrace = await run(b.rootfs, changes);
      assert.equal(viaRunc.exitCode, 0, viaRunc.err);
      assert.equal(viaPtrace.exitCode, 0, viaPtrace.err);
      assert.deepEqual(tree(b.rootfs), tree(a.rootfs));
      assert.equal(statSync(join(b.rootfs, 'owned')).uid, 1234);
      assert.equal(statSync(join(b.rootfs, 'd/hard')).ino, statSync(join(b.rootfs, 'new')).ino);
      assert.equal(existsSync(join(b.rootfs, 'proc')), false, 'mountpoints removed');
      // The same env and ids as runc sees.
      const script = 'env | sort; id; id -G; pwd; umask';
      const opts = { env: ['FOO=bar baz', 'EMPTY='], cwd: '/work/sub', user: { uid: 1000, gid: 1001, additionalGids: [2000, 3000] } };
      const envRunc = await run(a.rootfs, script, opts, 'runc');
      const envPtrace = await run(b.rootfs, script, opts);
      assert.equal(envPtrace.out, envRunc.out);
      assert.match(envPtrace.out, /uid=1000 gid=1001 groups=2000,3000\n1001 2000 3000\n\/work\/sub\n0022\n$/);
      assert.deepEqual(tree(b.rootfs), tree(a.rootfs), 'the cwd is created as runc creates it');
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });

  test('USER runs with real ids and supplementary groups; files it creates are owned by it', { skip }, async () => {
    const fs = busyboxRootfs('/bin/busybox');
    try {
      chmodSync(join(fs.rootfs, 'tmp'), 0o1777);
      mkdirSync(join(fs.rootfs, 'shared'), { mode: 0o770 });
      chmodSync(join(fs.rootfs, 'shared'), 0o770);
      chownSync(join(fs.rootfs, 'shared'), 0, 3000);
      const r = await run(fs.rootfs, 'touch /shared/mine /tmp/t; touch /root-only 2>&1; grep ^Cap /proc/self/status', { user: { uid: 1000, gid: 1001, additionalGids: [3000] } });
      assert.equal(r.exitCode, 0, r.err);
      assert.match(r.out, /touch: \/root-only: Permission denied/);
      assert.match(r.out, /CapEff:\s*0+\n/, 'no capabilities for a non-root user');
      for (const f of ['shared/mine', 'tmp/t']) {
        const st = statSync(join(fs.rootfs, f));
        assert.deepEqual([st.uid, st.gid], [1000, 1001], f);
      }
      const root = await run(fs.rootfs, 'grep ^CapBnd /proc/self/status');
      assert.match(root.out, /CapBnd:\s*0+a80425fb\n/, "root gets Docker's default capability set");
    } finally {
      fs.cleanup();
    }
  });

  test('a non-root USER reaches a rootfs under private (0700) work directories', { skip }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'slipway-ptrace-work-'));
    try {
      const fs = busyboxRootfs('/bin/busybox');
      const inner = join(work, 'build');
      mkdirSync(inner, { mode: 0o700 });
      chmodSync(work, 0o700);
      const rootfs = join(inner, 'rootfs');
      renameSync(fs.rootfs, rootfs);
      chmodSync(join(rootfs, 'tmp'), 0o1777);
      fs.cleanup();
      const r = await run(rootfs, 'id -u; touch /tmp/x', { user: { uid: 1000, gid: 1000 }, workDir: work });
      assert.equal(r.exitCode, 0, r.err);
      assert.equal(statSync(join(rootfs, 'tmp/x')).uid, 1000);
      // Outside slipway's work dir we change nothing and say what to do.
      chmodSync(work, 0o700);
      const other = mkdtempSync(join(tmpdir(), 'slipway-ptrace-other-'));
      try {
        await assert.rejects(run(rootfs, 'true', { user: { uid: 1000, gid: 1000 }, workDir: other }), (e: unknown) => e instanceof UserError && /must be able to enter .*slipway-ptrace-work/.test(e.message) && /chmod o\+x/.test(e.hint ?? ''));
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test('bind (read-only copy, rw), cache, tmpfs and secret mounts leave nothing in the rootfs', { skip }, async () => {
    const fs = busyboxRootfs('/bin/busybox');
    const src = mkdtempSync(join(tmpdir(), 'slipway-bind-'));
    const secretFile = join(fs.dir, 'secret');
    const cache = join(fs.dir, 'cache-store', 'go-build');
    try {
      writeFileSync(join(src, 'f'), 'content\n');
      writeFileSync(secretFile, 's3cr3t-value');
      mkdirSync(join(fs.rootfs, 'etc'));
      utimesSync(join(fs.rootfs, 'etc'), new Date(1e12), new Date(1e12));
      utimesSync(fs.rootfs, new Date(1e12), new Date(1e12));
      const before = tree(fs.rootfs, true);
      const mounts: RunStepOptions['mounts'] = [
        { type: 'bind', source: src, target: '/mnt/ro' },
        { type: 'bind', source: join(src, 'f'), target: '/one-file' },
        { type: 'cache', source: cache, target: '/root/.cache' },
        { type: 'tmpfs', target: '/scratch' },
        { type: 'secret', source: secretFile, target: '/run/secrets/token', mode: 0o400, uid: 1000, gid: 1000 },
      ];
      const a = await run(fs.rootfs, 'cat /mnt/ro/f /one-file; echo w > /mnt/ro/new && echo wrote; echo one >> /root/.cache/log; echo t > /scratch/t; stat -c "%a" /scratch; cat /run/secrets/token; echo; stat -c "%a %u %g" /run/secrets/token', { mounts });
      assert.equal(a.exitCode, 0, a.err);
      assert.equal(a.out, 'content\ncontent\nwrote\n1777\ns3cr3t-value\n400 1000 1000\n', 'a read-only bind is a copy: the write succeeds and is dropped');
      assert.equal(existsSync(join(src, 'new')), false, 'the bind source is untouched');
      const b = await run(fs.rootfs, 'echo two >> /root/.cache/log; cat /root/.cache/log; ls /scratch | wc -l; echo rw > /mnt/rw/new', { mounts: [...mounts, { type: 'bind', source: src, target: '/mnt/rw', readonly: false }] });
      assert.equal(b.out, 'one\ntwo\n0\n', b.err);
      assert.equal(readFileSync(join(src, 'new'), 'utf8'), 'rw\n', 'a rw bind writes through');
      assert.equal(readFileSync(join(cache, 'log'), 'utf8'), 'one\ntwo\n');
      const secretUser = await run(fs.rootfs, 'cat /run/secrets/token', { user: { uid: 1000, gid: 1000 }, mounts });
      assert.equal(secretUser.out, 's3cr3t-value', secretUser.err);
      assert.deepEqual(tree(fs.rootfs, true), before, 'the rootfs (names, modes, owners, mtimes) is exactly as before');
      assert.equal(readdirSync(fs.dir).filter((n) => n.startsWith('slipway-ptrace-')).length, 0);
    } finally {
      fs.cleanup();
      rmSync(src, { recursive: true, force: true });
    }
  });

  test("network 'none' is refused with a way out; 'host' gets resolv.conf and a generated hosts", { skip }, async () => {
    const fs = busyboxRootfs('/bin/busybox');
    try {
      await assert.rejects(run(fs.rootfs, 'true', { network: 'none' }), (e: unknown) => e instanceof UserError && /network namespace/.test(e.message) && /--isolation runc/.test(e.hint ?? '') && /drop --network=none/.test(e.hint ?? ''));
      const r = await run(fs.rootfs, 'cat /etc/resolv.conf; echo ---; cat /etc/hosts', { hostname: 'bk' });
      assert.equal(r.out, `${readFileSync('/etc/resolv.conf', 'utf8')}---\n127.0.0.1\tlocalhost bk\n::1\tlocalhost ip6-localhost ip6-loopback\n`);
      assert.equal(existsSync(join(fs.rootfs, 'etc')), false);
    } finally {
      fs.cleanup();
    }
  });

  test('abort kills the whole tree (also setsid children); background processes end with the main one', { skip }, async () => {
    const fs = busyboxRootfs('/bin/busybox');
    try {
      const ac = new AbortController();
      const p = run(fs.rootfs, 'sleep 3001 & setsid sleep 3002 & sh -c "sleep 3003; true" & sleep 3004', { signal: ac.signal });
      const settled = p.catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 700));
      const running = processesWith('sleep 300');
      const started = Date.now();
      ac.abort();
      assert.equal(running.length, 4, running.join('\n'));
      assert.equal(((await settled) as Error).name, 'AbortError');
      assert.ok(Date.now() - started < 5000);
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(processesWith('sleep 300'), []);
      assert.equal(existsSync(join(fs.rootfs, 'proc')), false, 'stubs removed after abort');

      const t0 = Date.now();
      const bg = await run(fs.rootfs, 'sleep 3005 & setsid sleep 3006 & echo started');
      assert.equal(bg.exitCode, 0);
      assert.ok(Date.now() - t0 < 5000, 'does not wait for background processes');
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(processesWith('sleep 300'), []);
      assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.startsWith('slipway-ptrace-')), []);
    } finally {
      fs.cleanup();
    }
  });

  test('an arm64 rootfs runs through proot -q and qemu-user-static', { skip: skip || (!existsSync(arm64Busybox) && 'no arm64 busybox at .tools/arm64/bin/busybox') }, async () => {
    const fs = busyboxRootfs(arm64Busybox);
    try {
      mkdirSync(join(fs.rootfs, 'etc'));
      const r = await run(fs.rootfs, 'uname -m; touch /made; echo x > /etc/made', { platform: { os: 'linux', architecture: 'arm64' } });
      assert.equal(r.out, 'aarch64\n', r.err);
      assert.equal(r.exitCode, 0);
      assert.deepEqual(readdirSync(fs.rootfs).sort(), ['bin', 'etc', 'made', 'tmp']);
      assert.deepEqual(readdirSync(join(fs.rootfs, 'etc')), ['made'], "proot's /etc/ld.so.preload binding leaves nothing");
      assert.equal(qemuForPlatform({ os: 'linux', architecture: 'arm64' }), '/usr/bin/qemu-aarch64-static');
      assert.equal(qemuForPlatform({ os: 'linux', architecture: 'amd64' }), undefined);
      const empty = mkdtempSync(join(tmpdir(), 'slipway-noqemu-'));
      try {
        assert.throws(() => qemuForPlatform({ os: 'linux', architecture: 'arm64' }, { qemuDir: empty }), (e: unknown) => e instanceof UserError && /qemu-aarch64-static is missing/.test(e.message) && /apt-get install qemu-user-static/.test(e.hint ?? ''));
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    } finally {
      fs.cleanup();
    }
  });
});

describe('chooseIsolation', () => {
  test('picks crun as root here (runc where crun is missing) and names each mode on request', { skip: isRoot && installedRuntimes().length ? skip : 'needs root and runc or crun' }, () => {
    const auto = chooseIsolation('auto');
    assert.equal(auto.mode, installedRuntimes().includes('crun') ? 'crun' : 'runc');
    assert.match(auto.reason, /as root/);
    if (installedRuntimes().includes('runc')) assert.equal(chooseIsolation('runc').runtime?.name, 'runc');
  });

  test('as root a crun older than 1.8 comes after runc; prepareIsolation asks its version through a resident shell', { skip: isRoot && installedRuntimes().includes('runc') ? skip : 'needs root and runc' }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'slipway-crun-'));
    try {
      symlinkSync(detectRuntime('runc').path, join(dir, 'runc'));
      const crun = (version: string) => writeFileSync(join(dir, 'crun'), `#!/bin/sh\necho 'crun version ${version}'\n`, { mode: 0o755 });
      crun('0.17');
      assert.equal(chooseIsolation('auto', { searchPath: [dir] }).mode, 'runc');
      crun('1.8.1');
      assert.equal(chooseIsolation('auto', { searchPath: [dir] }).mode, 'crun');
      assert.equal(chooseIsolation('auto', { searchPath: [dir], runtime: 'runc' }).mode, 'runc', 'a named runtime wins');
      assert.equal((await prepareIsolation('auto', { searchPath: [dir] })).crunVersion, 'crun version 1.8.1\n');
      assert.equal(chooseIsolation('auto', { searchPath: [dir], crunVersion: 'crun version 0.17\n' }).mode, 'runc', 'the version given is the one used');
      assert.equal((await prepareIsolation('ptrace', { searchPath: [dir] })).crunVersion, undefined);
      assert.equal((await prepareIsolation('auto', { searchPath: [dir], runtime: 'crun' })).crunVersion, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(chooseIsolation('ptrace').mode, 'ptrace');
    assert.throws(() => chooseIsolation('rootless'), (e: unknown) => e instanceof UserError && /rootless/.test(e.message));
  });
});

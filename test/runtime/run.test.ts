import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStep, type RunStepOptions, type RuntimeInfo } from '../../src/runtime/index.ts';
import { detectRuntime } from '../../src/runtime/detect.ts';
import { arm64Busybox, busyboxRootfs, installedRuntimes, isRoot } from './helpers.ts';

async function run(runtime: RuntimeInfo, rootfs: string, script: string, extra: Partial<RunStepOptions> = {}) {
  let out = '';
  let err = '';
  const r = await runStep({
    runtime, rootfs, args: ['/bin/sh', '-c', script], env: [], cwd: '/', user: { uid: 0, gid: 0 }, network: 'none',
    stdout: (c) => (out += c.toString()), stderr: (c) => (err += c.toString()), ...extra,
  });
  return { ...r, out, err };
}

/** Every path in the tree with its type, mode and mtime: what a layer diff would see. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const st = lstatSync(p);
      out.push(`${rel}/${name} ${st.mode.toString(8)} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p, `${rel}/${name}`);
    }
  };
  out.push(`/ ${statSync(root).mtimeMs}`);
  walk(root, '');
  return out;
}

function filesContaining(root: string, needle: string): string[] {
  const hits: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && readFileSync(p).includes(needle)) hits.push(p);
    }
  };
  walk(root);
  return hits;
}

const runtimes = installedRuntimes();
if (runtimes.length === 0) test('runtime', (t) => t.skip('neither runc nor crun is installed (apt-get install runc crun)'));

for (const name of runtimes) {
  describe(`runStep with ${name}`, () => {
    const runtime = detectRuntime(name);
    const skip = isRoot ? false : 'needs root (the tests run steps in root mode)';

    test('captures output and propagates the exit code', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      try {
        const r = await run(runtime, fs.rootfs, 'echo hello from $0; echo oops >&2; exit 7');
        assert.equal(r.out, 'hello from /bin/sh\n');
        assert.equal(r.err, 'oops\n');
        assert.equal(r.exitCode, 7);
        assert.equal((await run(runtime, fs.rootfs, 'true')).exitCode, 0);
        assert.equal((await run(runtime, fs.rootfs, "sh -c 'kill -9 $$'; exit $?")).exitCode, 137, 'a command killed by a signal gives 128+n');
      } finally {
        fs.cleanup();
      }
    });

    test('applies env (default PATH), user with extra groups, and a cwd created inside the rootfs', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      try {
        const r = await run(runtime, fs.rootfs, 'echo "$FOO|$PATH"; id -u; id -g; id -G; pwd; touch x', {
          env: ['FOO=bar baz'], user: { uid: 1000, gid: 1001, additionalGids: [2000] }, cwd: '/work/sub', hostname: 'stephost',
        });
        assert.equal(r.err, 'touch: x: Permission denied\n', 'a non-root user cannot write the root-owned cwd');
        assert.deepEqual(r.out.split('\n'), ['bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', '1000', '1001', '1001 2000', '/work/sub', '']);
        assert.ok(statSync(join(fs.rootfs, 'work/sub')).isDirectory(), 'cwd stays (it is part of the step result)');
        const r2 = await run(runtime, fs.rootfs, 'echo $PATH; hostname', { env: ['PATH=/bin'], hostname: 'stephost' });
        assert.equal(r2.out, '/bin\nstephost\n');
      } finally {
        fs.cleanup();
      }
    });

    test('cwd through a symlink pointing outside the rootfs stays inside it', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      const outside = mkdtempSync(join(tmpdir(), 'slipway-outside-'));
      try {
        execFileSync('ln', ['-s', outside, join(fs.rootfs, 'escape')]);
        const r = await run(runtime, fs.rootfs, 'pwd', { cwd: '/escape/made' });
        assert.equal(r.exitCode, 0, r.err);
        assert.deepEqual(readdirSync(outside), [], 'nothing created on the host');
        assert.ok(statSync(join(fs.rootfs, outside, 'made')).isDirectory());
      } finally {
        fs.cleanup();
        rmSync(outside, { recursive: true, force: true });
      }
    });

    test("network 'none' has only loopback; 'host' sees the host's interfaces, resolv.conf and a generated hosts", { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      try {
        const none = await run(runtime, fs.rootfs, 'ls /sys/class/net; ip -o link show lo | grep -c UP; cat /etc/resolv.conf 2>&1 | head -1');
        assert.equal(none.out, "lo\n1\ncat: can't open '/etc/resolv.conf': No such file or directory\n");
        const host = await run(runtime, fs.rootfs, 'ls /sys/class/net; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo x >> /etc/hosts', { network: 'host', hostname: 'bk' });
        const [ifaces, resolv, hosts] = host.out.split('---\n');
        assert.deepEqual(ifaces.trim().split('\n').sort(), readdirSync('/sys/class/net').sort());
        assert.equal(resolv, readFileSync('/etc/resolv.conf', 'utf8'));
        assert.match(hosts, /^127\.0\.0\.1\tlocalhost bk\n::1\tlocalhost ip6-localhost ip6-loopback\n$/);
        assert.match(host.err, /Read-only file system/);
        assert.equal(existsSync(join(fs.rootfs, 'etc')), false, '/etc created for the mounts is gone again');
      } finally {
        fs.cleanup();
      }
    });

    test('bind mounts: read-only refuses writes, rw writes through', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      const src = mkdtempSync(join(tmpdir(), 'slipway-bind-'));
      try {
        writeFileSync(join(src, 'f'), 'content\n');
        const ro = await run(runtime, fs.rootfs, 'cat /mnt/src/f; touch /mnt/src/new', { mounts: [{ type: 'bind', source: src, target: '/mnt/src', readonly: true }] });
        assert.equal(ro.out, 'content\n');
        assert.match(ro.err, /Read-only file system/);
        assert.notEqual(ro.exitCode, 0);
        assert.equal(existsSync(join(src, 'new')), false);
        const file = await run(runtime, fs.rootfs, 'cat /one-file', { mounts: [{ type: 'bind', source: join(src, 'f'), target: '/one-file' }] });
        assert.equal(file.out, 'content\n');
        const rw = await run(runtime, fs.rootfs, 'echo w > /mnt/src/new', { mounts: [{ type: 'bind', source: src, target: '/mnt/src', readonly: false }] });
        assert.equal(rw.exitCode, 0, rw.err);
        assert.equal(readFileSync(join(src, 'new'), 'utf8'), 'w\n');
        assert.equal(existsSync(join(fs.rootfs, 'mnt')), false, 'mountpoints removed');
        assert.equal(existsSync(join(fs.rootfs, 'one-file')), false);
      } finally {
        fs.cleanup();
        rmSync(src, { recursive: true, force: true });
      }
    });

    test('a cache mount persists across runs; a tmpfs mount leaves nothing', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      const cache = join(fs.dir, 'cache-store', 'go-build');
      try {
        const mounts = [{ type: 'cache' as const, source: cache, target: '/root/.cache' }, { type: 'tmpfs' as const, target: '/scratch', size: 1 << 20 }];
        const a = await run(runtime, fs.rootfs, 'echo one >> /root/.cache/log; echo t > /scratch/t; grep " /scratch " /proc/mounts', { mounts });
        assert.equal(a.exitCode, 0, a.err);
        assert.match(a.out, /^tmpfs \/scratch tmpfs .*size=1024k/);
        const b = await run(runtime, fs.rootfs, 'echo two >> /root/.cache/log; cat /root/.cache/log; ls /scratch | wc -l', { mounts });
        assert.equal(b.out, 'one\ntwo\n0\n');
        assert.equal(readFileSync(join(cache, 'log'), 'utf8'), 'one\ntwo\n');
        assert.equal(existsSync(join(fs.rootfs, 'root')), false);
        assert.equal(existsSync(join(fs.rootfs, 'scratch')), false);
      } finally {
        fs.cleanup();
      }
    });

    test('a secret is readable with its mode and owner, and leaves no trace in the rootfs', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      const secretFile = join(fs.dir, 'secret');
      try {
        writeFileSync(secretFile, 's3cr3t-value');
        chmodSync(secretFile, 0o600);
        mkdirSync(join(fs.rootfs, 'etc'));
        utimesSync(join(fs.rootfs, 'etc'), new Date(1e12), new Date(1e12));
        utimesSync(fs.rootfs, new Date(1e12), new Date(1e12));
        const before = snapshot(fs.rootfs);
        const r = await run(runtime, fs.rootfs, 'cat /run/secrets/token; echo; stat -c "%a %u %g" /run/secrets/token; id -u', {
          network: 'host', user: { uid: 1000, gid: 1000 },
          mounts: [{ type: 'secret', source: secretFile, target: '/run/secrets/token', mode: 0o400, uid: 1000, gid: 1000 }],
        });
        assert.equal(r.out, 's3cr3t-value\n400 1000 1000\n1000\n', r.err);
        assert.deepEqual(snapshot(fs.rootfs), before, 'the rootfs (names, modes, mtimes) is exactly as before');
        assert.deepEqual(filesContaining(fs.rootfs, 's3cr3t'), []);
      } finally {
        fs.cleanup();
      }
    });

    test('a device node shipped inside the rootfs cannot be opened', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      try {
        const disk = statSync('/dev/vda', { throwIfNoEntry: false }) ?? statSync('/dev/sda', { throwIfNoEntry: false }) ?? statSync('/dev/loop0');
        const major = Number(BigInt(disk.rdev) >> 8n) & 0xfff;
        const minor = disk.rdev & 0xff;
        execFileSync('mknod', [join(fs.rootfs, 'disk'), 'b', String(major), String(minor)]);
        execFileSync('mknod', [join(fs.rootfs, 'mem'), 'c', '1', '1']);
        const r = await run(runtime, fs.rootfs, 'head -c 16 /disk | wc -c; head -c 16 /mem | wc -c; head -c 16 /dev/zero | wc -c; echo ok > /dev/null && echo null-ok');
        assert.match(r.err, /\/disk: (Operation not permitted|Permission denied)/);
        assert.match(r.err, /\/mem: (Operation not permitted|Permission denied)/);
        assert.equal(r.out, '0\n0\n16\nnull-ok\n');
      } finally {
        fs.cleanup();
      }
    });

    test('an arm64 rootfs runs through QEMU and reports aarch64', { skip: skip || (!existsSync(arm64Busybox) && 'no arm64 busybox at .tools/arm64/bin/busybox') }, async () => {
      const fs = busyboxRootfs(arm64Busybox);
      try {
        const r = await run(runtime, fs.rootfs, 'uname -m', { platform: { os: 'linux', architecture: 'arm64' } });
        assert.equal(r.out, 'aarch64\n', r.err);
      } finally {
        fs.cleanup();
      }
    });

    test('an abort signal stops a running step and rejects', { skip }, async () => {
      const fs = busyboxRootfs('/bin/busybox');
      try {
        const started = Date.now();
        await assert.rejects(run(runtime, fs.rootfs, 'sleep 30', { signal: AbortSignal.timeout(500) }), { name: 'TimeoutError' });
        assert.ok(Date.now() - started < 10_000);
        assert.equal(existsSync(join(fs.rootfs, 'proc')), false, 'stubs removed after abort');
      } finally {
        fs.cleanup();
      }
    });
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { buildSpec } from '../../src/runtime/spec.ts';
import { detectRuntime } from '../../src/runtime/detect.ts';
import { ensureEmulation, readHandler } from '../../src/runtime/emulation.ts';
import { hostPathInRoot } from '../../src/runtime/rootpath.ts';
import { installedRuntimes, isRoot } from './helpers.ts';

test('detectRuntime: the first installed of its order (runc, crun by default), honours a preferred name or path, explains what to install', (t) => {
  const installed = installedRuntimes();
  if (installed.length === 0) return t.skip('neither runc nor crun is installed');
  assert.equal(detectRuntime().name, installed[0]);
  assert.equal(detectRuntime(undefined, undefined, ['crun', 'runc']).name, installed.at(-1));
  assert.equal(detectRuntime('runc', undefined, ['crun']).name, 'runc', 'a preferred name wins over the order');
  for (const n of installed) assert.equal(detectRuntime(n).name, n);
  assert.deepEqual(detectRuntime(detectRuntime('runc').path), detectRuntime('runc'));
  assert.throws(() => detectRuntime('youki'), (e: unknown) => e instanceof UserError && /unknown OCI runtime "youki"/.test(e.message));
  assert.throws(() => detectRuntime('/nowhere/runc'), (e: unknown) => e instanceof UserError && /"\/nowhere\/runc" not found/.test(e.message));
  assert.throws(() => detectRuntime(undefined, ['/nonexistent']), (e: unknown) => e instanceof UserError && /neither runc nor crun/.test(e.message) && /apt-get install runc/.test(e.hint ?? ''));
});

test('buildSpec: namespaces, default capabilities, device allow-list, masked paths, rlimit', () => {
  const spec = buildSpec({ rootfs: '/r', args: ['/bin/sh', '-c', 'x'], env: ['A=1'], cwd: '/w', user: { uid: 0, gid: 0 }, hostname: 'h', newNetworkNamespace: true, mounts: [] }) as {
    process: { env: string[]; capabilities: { bounding: string[]; effective: string[] }; rlimits: unknown[]; noNewPrivileges: boolean };
    linux: { namespaces: Array<{ type: string }>; resources: { devices: Array<{ allow: boolean; major?: number; minor?: number }> }; maskedPaths: string[]; readonlyPaths: string[] };
    mounts: Array<{ destination: string; options: string[] }>;
  };
  assert.deepEqual(spec.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=1']);
  assert.deepEqual(spec.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.equal(spec.process.capabilities.bounding.length, 14);
  assert.ok(!spec.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
  assert.equal(spec.process.noNewPrivileges, false);
  assert.deepEqual(spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.deepEqual(spec.linux.resources.devices[0], { allow: false, access: 'rwm' });
  assert.deepEqual(spec.linux.resources.devices.filter((d) => d.allow).map((d) => `${d.major}:${d.minor ?? '*'}`), ['1:3', '1:5', '1:7', '1:8', '1:9', '5:0', '5:2', '136:*']);
  assert.ok(spec.linux.maskedPaths.includes('/proc/kcore'));
  assert.ok(spec.linux.readonlyPaths.includes('/proc/sys'));
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/sys')?.options.includes('ro'), true);
  const hostNet = buildSpec({ rootfs: '/r', args: ['x'], env: [], cwd: '/', user: { uid: 5, gid: 5 }, hostname: 'h', newNetworkNamespace: false, mounts: [] }) as typeof spec;
  assert.ok(!hostNet.linux.namespaces.some((n) => n.type === 'network'));
  assert.deepEqual(hostNet.process.capabilities.effective, [], 'a non-root user gets no effective capabilities');
});

test('hostPathInRoot: symlinks and .. never leave the rootfs', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'slipway-rootpath-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'a/b'), { recursive: true });
  symlinkSync('/etc', join(root, 'abs'));
  symlinkSync('../../../../..', join(root, 'a/b/up'));
  symlinkSync('b', join(root, 'a/rel'));
  assert.equal(hostPathInRoot(root, '/abs/passwd'), join(root, 'etc/passwd'));
  assert.equal(hostPathInRoot(root, '/a/b/up/x'), join(root, 'x'));
  assert.equal(hostPathInRoot(root, '/../../x'), join(root, 'x'));
  assert.equal(hostPathInRoot(root, '/a/rel/c'), join(root, 'a/b/c'));
  assert.equal(hostPathInRoot(root, '/a/rel/..'), join(root, 'a'));
  assert.equal(hostPathInRoot(root, '/abs', false), join(root, 'abs'));
});

test('ensureEmulation: native platforms need nothing; missing, disabled or non-F handlers get a clear error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-binfmt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const opts = { binfmtDir: dir, binfmtConfDir: join(dir, 'conf'), canRegister: false };
  ensureEmulation({ os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : 'arm64' }, opts);
  const foreign = { os: 'linux', architecture: process.arch === 'x64' ? 'arm64' : 'amd64' };
  const qname = process.arch === 'x64' ? 'qemu-aarch64' : 'qemu-x86_64';
  assert.throws(() => ensureEmulation(foreign, opts), (e: unknown) => e instanceof UserError && e.message.includes(`no QEMU binfmt handler ${qname}`) && /qemu-user-static/.test(e.hint ?? ''));
  writeFileSync(join(dir, qname), 'enabled\ninterpreter /usr/libexec/qemu-binfmt/x\nflags: PO\noffset 0\n');
  assert.deepEqual(readHandler(dir, qname), { enabled: true, flags: 'PO', interpreter: '/usr/libexec/qemu-binfmt/x' });
  assert.throws(() => ensureEmulation(foreign, opts), /lacks the F \(fix binary\) flag/);
  writeFileSync(join(dir, qname), 'disabled\ninterpreter /x\nflags: POF\n');
  assert.throws(() => ensureEmulation(foreign, opts), /is disabled/);
  writeFileSync(join(dir, qname), 'enabled\ninterpreter /x\nflags: POF\n');
  ensureEmulation(foreign, opts);
  assert.throws(() => ensureEmulation({ os: 'windows', architecture: 'amd64' }, opts), /only linux platforms/);
  assert.throws(() => ensureEmulation({ os: 'linux', architecture: 'wasm' }, opts), /no QEMU emulator is known/);
});

test('ensureEmulation: registers a missing handler from qemu-user-static as root', (t) => {
  const binfmt = '/proc/sys/fs/binfmt_misc';
  if (!isRoot) return t.skip('needs root to register binfmt handlers');
  if (!existsSync('/usr/lib/binfmt.d/qemu-riscv64.conf')) return t.skip('qemu-user-static is not installed (apt-get install qemu-user-static)');
  if (readHandler(binfmt, 'qemu-riscv64')) return t.skip('qemu-riscv64 is already registered on this machine; not touching it');
  try {
    ensureEmulation({ os: 'linux', architecture: 'riscv64' });
    const h = readHandler(binfmt, 'qemu-riscv64');
    assert.equal(h?.enabled, true);
    assert.match(h!.flags, /F/);
    assert.equal(h!.interpreter, '/usr/libexec/qemu-binfmt/riscv64-binfmt-P');
  } finally {
    // leave the machine as we found it
    if (readHandler(binfmt, 'qemu-riscv64')) writeFileSync(join(binfmt, 'qemu-riscv64'), '-1');
  }
});

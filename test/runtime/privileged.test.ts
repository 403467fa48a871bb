// The runtime side of RUN --security=insecure and RUN --device: the spec BuildKit's insecure mode
// writes, capability names from a CapEff mask, and CDI spec files resolved as BuildKit's CDI manager
// resolves them (spec dirs, priorities, classes, entitlements, container edits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../../src/errors.ts';
import { capabilitiesOf } from '../../src/runtime/privileged.ts';
import { buildSpec, insecureDevices } from '../../src/runtime/spec.ts';
import { cdiEdits, loadCdiRegistry, resolveCdiDevices } from '../../src/runtime/index.ts';

type Spec = {
  process: { capabilities: Record<string, string[]> };
  linux: { devices: Array<{ path: string; type: string; major: number; minor: number; uid?: number }>; resources: { devices: Array<{ allow: boolean; type?: string; major?: number; minor?: number; access: string }> }; maskedPaths: string[]; readonlyPaths: string[] };
  mounts: Array<{ destination: string; type: string; options: string[] }>;
};
const base = { rootfs: '/r', args: ['x'], env: [], cwd: '/', hostname: 'h', newNetworkNamespace: true, mounts: [] };

test('buildSpec insecure: every given capability in all five sets, nothing masked, /sys and cgroupfs writable, every device allowed', () => {
  const caps = capabilitiesOf(0x1fffeffffffn);
  assert.ok(caps.includes('CAP_SYS_ADMIN') && caps.includes('CAP_NET_ADMIN') && caps.includes('CAP_CHECKPOINT_RESTORE'));
  assert.ok(!caps.includes('CAP_SYS_RESOURCE'), 'bit 24 is clear in this mask');
  assert.deepEqual(capabilitiesOf(0b101n), ['CAP_CHOWN', 'CAP_DAC_READ_SEARCH']);
  const spec = buildSpec({ ...base, user: { uid: 1000, gid: 1000 }, insecure: { capabilities: caps, devices: insecureDevices(2) } }) as Spec;
  for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient']) assert.deepEqual(spec.process.capabilities[set], caps, set);
  assert.deepEqual([spec.linux.maskedPaths, spec.linux.readonlyPaths], [[], []]);
  assert.equal(spec.mounts.find((m) => m.destination === '/sys')!.options.includes('ro'), false);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/sys/fs/cgroup'), { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev'] });
  assert.deepEqual(spec.linux.resources.devices, [{ allow: true, type: 'c', access: 'rwm' }, { allow: true, type: 'b', access: 'rwm' }]);
  const paths = spec.linux.devices.map((d) => d.path);
  for (const p of ['/dev/null', '/dev/fuse', '/dev/kvm', '/dev/net/tun', '/dev/loop-control', '/dev/loop0', '/dev/loop9']) assert.ok(paths.includes(p), p);
  assert.ok(!paths.includes('/dev/loop10'), 'loops up to the first free one + 7');
  // Rootless never gets it (and runStep refuses it there before the spec is written).
  const rootless = buildSpec({ ...base, user: { uid: 0, gid: 0 }, userNamespace: { hostUid: 1000, hostGid: 1000 }, insecure: { capabilities: caps, devices: [] } }) as Spec;
  assert.ok(!rootless.process.capabilities.bounding.includes('CAP_SYS_ADMIN'));
});

test('buildSpec with CDI device nodes: a node each and a device-cgroup rule with its permissions', () => {
  const spec = buildSpec({ ...base, user: { uid: 0, gid: 0 }, devices: [{ path: '/dev/x', type: 'c', major: 1, minor: 5, permissions: 'rw', uid: 7 }, { path: '/dev/null', type: 'c', major: 1, minor: 7, permissions: 'rwm' }] }) as Spec;
  assert.deepEqual(spec.linux.devices.filter((d) => d.path === '/dev/x'), [{ path: '/dev/x', type: 'c', major: 1, minor: 5, uid: 7 }]);
  assert.deepEqual(spec.linux.devices.filter((d) => d.path === '/dev/null').map((d) => d.minor), [7], 'a CDI node replaces the default one of its path');
  assert.deepEqual(spec.linux.resources.devices.slice(-2), [{ allow: true, type: 'c', major: 1, minor: 5, access: 'rw' }, { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' }]);
  assert.deepEqual(spec.linux.resources.devices[0], { allow: false, access: 'rwm' }, 'everything else stays denied');
});

function specDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cdi-unit-'));
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), typeof body === 'string' ? body : JSON.stringify(body));
  return dir;
}
const dev = (name: string, path = '/dev/zero', extra: object = {}) => ({ name, ...extra, containerEdits: { deviceNodes: [{ path: `/dev/${name}`, hostPath: path }] } });
const noWarn = (m: string) => assert.fail(`unexpected warning: ${m}`);

test('CDI registry: later spec dirs win, a conflict in one dir drops the device, bad files are reported and skipped', () => {
  const low = specDir({ 'a.json': { cdiVersion: '0.6.0', kind: 'example.com/c', devices: [dev('one', '/dev/zero'), dev('two')] } });
  const high = specDir({
    'b.json': { cdiVersion: '0.6.0', kind: 'example.com/c', devices: [dev('one', '/dev/full')] },
    'c.json': { cdiVersion: '0.6.0', kind: 'example.com/c', devices: [dev('two')] },
    'd.json': { cdiVersion: '0.6.0', kind: 'example.com/c', devices: [dev('two')] },
    'json.yaml': { cdiVersion: '0.6.0', kind: 'example.com/y', devices: [dev('y')] },
    'bad.json': '{', 'nokind.json': { cdiVersion: '0.6.0', devices: [dev('x')] }, 'readme.txt': 'not a spec',
  });
  const reg = loadCdiRegistry([low, join(low, 'missing'), high]);
  assert.deepEqual([...reg.devices.keys()].sort(), ['example.com/c=one', 'example.com/y=y'], 'a .yaml file holding JSON is read');
  assert.equal(reg.devices.get('example.com/c=one')!.spec.path, join(high, 'b.json'));
  assert.ok(reg.errors.some((e) => e.includes('conflicting device "example.com/c=two"')), reg.errors.join('\n'));
  assert.ok(reg.errors.some((e) => e.startsWith(join(high, 'bad.json')) && /not valid JSON/.test(e)));
  assert.ok(reg.errors.some((e) => /invalid kind undefined/.test(e)));
  assert.equal(reg.errors.length, 3, reg.errors.join('\n'));
});

test('CDI names: vendor/class (first), vendor/class=* (all), the class annotation; the device entitlement and autoallow', () => {
  const dir = specDir({
    'gpu.json': { cdiVersion: '0.6.0', kind: 'example.com/gpu', annotations: { 'org.mobyproject.buildkit.device.class': 'gpu' }, devices: [dev('g0'), dev('g1')] },
    'free.json': { cdiVersion: '0.6.0', kind: 'example.com/free', devices: [dev('f', '/dev/zero', { annotations: { 'org.mobyproject.buildkit.device.autoallow': 'true' } })] },
  });
  const reg = loadCdiRegistry([dir]);
  const all = { all: true, names: {} };
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'example.com/gpu', required: true }], all, noWarn), ['example.com/gpu=g0']);
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'example.com/gpu=*', required: true }], all, noWarn), ['example.com/gpu=g0', 'example.com/gpu=g1']);
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'gpu', required: true }], all, noWarn), ['example.com/gpu=g0', 'example.com/gpu=g1']);
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'example.com/free=f', required: true }], undefined, noWarn), ['example.com/free=f'], 'autoallow needs no entitlement');
  // A granted name resolves as a request does: a bare class grants its first device only (as BuildKit).
  const classGrant = { all: false, names: { 'example.com/gpu': '' } };
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'example.com/gpu=g0', required: true }], classGrant, noWarn), ['example.com/gpu=g0']);
  assert.throws(() => resolveCdiDevices(reg, [{ name: 'example.com/gpu=g1', required: true }], classGrant, noWarn), /device example\.com\/gpu=g1 is requested by the build but not allowed/);
  assert.throws(() => resolveCdiDevices(reg, [{ name: 'example.com/gpu=*', required: true }], { all: false, names: { 'example.com/gpu=g0': '' } }, noWarn),
    (e: unknown) => e instanceof UserError && e.message === 'device example.com/gpu=g1 is requested by the build but not allowed');
  assert.throws(() => resolveCdiDevices(reg, [{ name: 'gpu', required: true }], undefined, noWarn), /devices example\.com\/gpu=g0, example\.com\/gpu=g1 are requested by the build but not allowed/);
  const warned: string[] = [];
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'example.com/none=x', required: false }], all, (m) => warned.push(m)), []);
  assert.match(warned[0], /Optional device "example\.com\/none=x" is not registered/);
});

test('CDI edits: spec-wide edits once, host device numbers filled in, env and mounts; unsupported edits refused', () => {
  const share = mkdtempSync(join(tmpdir(), 'slipway-cdi-share-'));
  mkdirSync(join(share, 'd'));
  const dir = specDir({
    'a.json': {
      cdiVersion: '0.6.0', kind: 'example.com/a', containerEdits: { env: ['WIDE=1'] },
      devices: [
        { name: 'z', containerEdits: { deviceNodes: [{ path: '/dev/z', hostPath: '/dev/zero', permissions: 'r' }], env: ['Z=1'], mounts: [{ hostPath: join(share, 'd'), containerPath: '/opt/d' }] } },
        { name: 'n', containerEdits: { deviceNodes: [{ path: '/dev/n', type: 'c', major: 240, minor: 3 }] } },
        { name: 'out', containerEdits: { deviceNodes: [{ path: '/opt/dev', hostPath: '/dev/zero' }] } },
        { name: 'gone', containerEdits: { deviceNodes: [{ path: '/dev/nonexistent-slipway' }] } },
        { name: 'rdt', containerEdits: { env: ['A=1'], intelRdt: { closID: 'x' } } },
        { name: 'nomount', containerEdits: { mounts: [{ hostPath: join(share, 'missing'), containerPath: '/opt/m' }] } },
      ],
    },
  });
  const reg = loadCdiRegistry([dir]);
  const edits = cdiEdits(reg, ['example.com/a=z', 'example.com/a=n'], { uid: 1000, gid: 0 });
  assert.deepEqual(edits.env, ['WIDE=1', 'Z=1']);
  assert.deepEqual(edits.deviceNodes, [
    { path: '/dev/z', type: 'c', major: 1, minor: 5, permissions: 'r', fileMode: 0o666, uid: 1000 },
    { path: '/dev/n', type: 'c', major: 240, minor: 3, permissions: 'rwm', uid: 1000 },
  ]);
  assert.deepEqual(edits.mounts, [{ hostPath: join(share, 'd'), containerPath: '/opt/d', type: 'bind', options: ['rbind'] }]);
  assert.throws(() => cdiEdits(reg, ['example.com/a=out'], { uid: 0, gid: 0 }), /CDI device example\.com\/a=out .*slipway creates CDI device nodes under \/dev only/);
  assert.throws(() => cdiEdits(reg, ['example.com/a=gone'], { uid: 0, gid: 0 }), /failed to stat CDI host device "\/dev\/nonexistent-slipway"/);
  assert.throws(() => cdiEdits(reg, ['example.com/a=rdt'], { uid: 0, gid: 0 }), /it has intelRdt, which slipway does not apply/);
  assert.throws(() => cdiEdits(reg, ['example.com/a=nomount'], { uid: 0, gid: 0 }), /mount host path .*missing does not exist/);
  // A name that is a property of every object is no grant.
  assert.throws(() => resolveCdiDevices(reg, [{ name: 'constructor', required: true }], { all: false, names: {} }, noWarn), /required device "constructor" is not registered/);
});

test('CDI YAML spec: a YAML `autoallow: true` annotation and `name: 0` read as the CDI library reads them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cdi-yaml-'));
  writeFileSync(join(dir, 'v.yaml'), 'cdiVersion: "0.6.0"\nkind: "vendor1.com/device"\ndevices:\n  - name: 0\n    containerEdits:\n      env:\n        - FOO=injected\nannotations:\n  org.mobyproject.buildkit.device.autoallow: true\n');
  const reg = loadCdiRegistry([dir]);
  assert.deepEqual(reg.errors, []);
  assert.deepEqual(resolveCdiDevices(reg, [{ name: 'vendor1.com/device', required: true }], undefined, noWarn), ['vendor1.com/device=0']);
  assert.deepEqual(cdiEdits(reg, ['vendor1.com/device=0'], { uid: 0, gid: 0 }).env, ['FOO=injected']);
});

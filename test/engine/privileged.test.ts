// RUN --security=insecure (the security.insecure entitlement) and RUN --device (CDI devices, the
// device entitlement), built end to end: a real registry serving busybox, real runc as root, and
// the layers read back with GNU tar.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { buildContext, makeContext, run, runMissing, type TestBuild } from './helpers.ts';
import type { RawBuildOptions } from '../../src/request/index.ts';
import { probePtrace } from '../../src/runtime/ptrace/index.ts';

const missing = registryMissing() ?? fixturesMissing() ?? runMissing();
const noPtrace = probePtrace().ok ? false : `proot cannot run here: ${probePtrace().reason}`;

/** The entries (type + path) of each layer the build added on top of the base, and its files' contents. */
async function layersOf(out: string, baseLayers: number): Promise<{ entries: string[][]; files: Map<string, string> }> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-priv-x-'));
  await run('tar', ['-xf', out, '-C', work]);
  const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`]);
  const entries: string[][] = [];
  const files = new Map<string, string>();
  for (const l of JSON.parse(raw).layers.slice(baseLayers)) {
    const blob = join(work, 'blobs', ...l.digest.split(':'));
    const { stdout: list } = await run('tar', ['-tvzf', blob]);
    entries.push(list.split('\n').filter(Boolean).map((line) => { const f = line.split(/\s+/); return `${f[0][0]} ${f.slice(5).join(' ').replace(/\/$/, '')}`; }));
    const dir = mkdtempSync(join(work, 'l-'));
    await run('tar', ['-xzf', blob, '-C', dir]);
    const { stdout: found } = await run('find', ['.', '-type', 'f'], { cwd: dir });
    for (const f of found.split('\n').filter(Boolean)) files.set(f.slice(2), readFileSync(join(dir, f), 'utf8'));
  }
  return { entries, files };
}

describe('RUN --security=insecure and RUN --device', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;
  let baseLayers: number;

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'amd64', 'library/busybox:1')).ref;
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${busybox}`]);
    baseLayers = JSON.parse(stdout).layers.length;
  });
  after(async () => reg?.stop());

  const build = async (ctx: string, opts: Partial<RawBuildOptions> = {}): Promise<TestBuild & { out: string }> => {
    const out = join(mkdtempSync(join(tmpdir(), 'slipway-priv-')), 'image.tar');
    const b = await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '0', isolation: 'runc', ...opts });
    return { ...b, out };
  };

  test('a step that needs CAP_SYS_ADMIN fails in the sandbox and runs with --security=insecure + --allow security.insecure', async () => {
    const step = 'mkdir -p /m && mount -t tmpfs none /m && grep CapEff /proc/self/status > /caps && head -1 /proc/timer_list > /timers && umount /m';
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN ${step}\n` });
    await assert.rejects(build(ctx), /Dockerfile:2: RUN failed: .*exit code: \d+.*mount: permission denied/s);
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --security=insecure ${step}\n`);
    await assert.rejects(build(ctx), /Dockerfile:2: security\.insecure is not allowed/);
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-priv-cache-'));
    const ok = await build(ctx, { allow: ['security.insecure'], cacheDir });
    const { entries, files } = await layersOf(ok.out, baseLayers);
    const eff = BigInt('0x' + /CapEff:\s*([0-9a-f]+)/.exec(files.get('caps') ?? '')![1]);
    assert.ok(eff & (1n << 21n), `CAP_SYS_ADMIN in the step's effective set (${eff.toString(16)})`);
    assert.ok(eff & (1n << 12n), 'CAP_NET_ADMIN too: every capability slipway holds');
    assert.match(files.get('timers') ?? '', /^Timer List/, '/proc/timer_list is not masked in insecure mode');
    assert.deepEqual(entries, [['- caps', 'd m', '- timers']], 'only what the step wrote: no /dev, /sys or cgroup entries');
    // The security mode is part of the step's key: the sandbox step of the same command is another step.
    const again = await build(ctx, { allow: ['security.insecure'], cacheDir });
    assert.ok(again.log.some((l) => l.startsWith('CACHED')), 'the insecure step is cached under its own key');
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN ${step}\n`);
    await assert.rejects(build(ctx, { allow: ['security.insecure'], cacheDir }), /mount: permission denied/, 'the sandbox step does not take the insecure one\'s layer');
    if (existsSync('/usr/bin/crun')) {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --security=insecure ${step}\n`);
      const crun = await build(ctx, { allow: ['security.insecure'], isolation: 'crun' });
      assert.match((await layersOf(crun.out, baseLayers)).files.get('timers') ?? '', /^Timer List/, 'crun runs it privileged too');
    }
  });

  test('RUN --security=insecure under the ptrace isolation is refused at its line, never run in a sandbox', { skip: noPtrace }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo ok\nRUN --security=insecure touch /x\n` });
    await assert.rejects(build(ctx, { allow: ['security.insecure'], isolation: 'ptrace' }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /Dockerfile:3: RUN --security=insecure cannot run privileged here: the ptrace isolation/);
      assert.match(e.hint ?? '', /--isolation runc/);
      return true;
    });
  });

  const cdiSpec = (dir: string, spec: object, name = 'test.json'): string => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), JSON.stringify(spec));
    return dir;
  };

  test('RUN --device passes a CDI device (node, env, mount) in; nothing of it lands in the layer', async () => {
    const shared = mkdtempSync(join(tmpdir(), 'slipway-cdi-share-'));
    writeFileSync(join(shared, 'lib.txt'), 'from the host\n');
    const specs = cdiSpec(mkdtempSync(join(tmpdir(), 'slipway-cdi-')), {
      cdiVersion: '0.6.0', kind: 'example.com/test',
      containerEdits: { env: ['SPECWIDE=yes'] },
      devices: [
        { name: 'zero', containerEdits: { deviceNodes: [{ path: '/dev/slipway-test', hostPath: '/dev/zero', permissions: 'rw' }], env: ['VAR=hello'], mounts: [{ hostPath: shared, containerPath: '/opt/cdi', options: ['ro', 'bind'] }] } },
        { name: 'full', containerEdits: { deviceNodes: [{ path: '/dev/slipway-full', hostPath: '/dev/full' }] } },
      ],
    });
    const step = 'test -c /dev/slipway-test && head -c 4 /dev/slipway-test | od -An -tx1 > /out && echo "$VAR $SPECWIDE" >> /out && cat /opt/cdi/lib.txt >> /out && ! test -e /dev/slipway-full';
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --device=example.com/test=zero ${step}\n` });
    await assert.rejects(build(ctx, { cdiSpecDirs: [specs] }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /Dockerfile:2: device example\.com\/test=zero is requested by the build but not allowed/);
      assert.match(e.hint ?? '', /--allow device=example\.com\/test=zero/);
      return true;
    });
    for (const allow of ['device', 'device=example.com/test=zero', 'device=example.com/test=*']) {
      const { out } = await build(ctx, { cdiSpecDirs: [specs], allow: [allow] });
      const { entries, files } = await layersOf(out, baseLayers);
      assert.equal(files.get('out'), ' 00 00 00 00\nhello yes\nfrom the host\n', allow);
      assert.deepEqual(entries, [['- out']], `${allow}: no device node, mountpoint or /opt in the layer`);
    }
    // An alias: the Dockerfile asks for a name of its own, the entitlement maps it to a device.
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --device=gpu test -c /dev/slipway-test && echo $VAR > /out\n`);
    const aliased = await build(ctx, { cdiSpecDirs: [specs], allow: ['device=example.com/test=zero,alias=gpu'] });
    assert.equal((await layersOf(aliased.out, baseLayers)).files.get('out'), 'hello\n');
  });

  test('RUN --device: a required device that is missing fails naming it and the dirs searched; an optional one is skipped', async () => {
    // A YAML spec (the block YAML nvidia-ctk and BuildKit's fixtures write).
    const specs = mkdtempSync(join(tmpdir(), 'slipway-cdi-'));
    writeFileSync(join(specs, 'test.yaml'), '---\ncdiVersion: "0.6.0"\nkind: example.com/test\ndevices:\n- name: zero\n  containerEdits:\n    deviceNodes:\n    - path: /dev/slipway-test\n      hostPath: /dev/zero\n');
    cdiSpec(specs, { cdiVersion: '0.6.0', kind: 'example.com/hooked', devices: [{ name: 'h', containerEdits: { hooks: [{ hookName: 'createContainer', path: '/bin/true' }] } }] }, 'hooked.json');
    writeFileSync(join(specs, 'broken.yaml'), 'cdiVersion: &v 0.6.0\nkind: example.com/yaml\n');
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --device=example.com/test=nope,required=true true\n` });
    await assert.rejects(build(ctx, { cdiSpecDirs: [specs], allow: ['device'] }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /Dockerfile:2: required device "example\.com\/test=nope" is not registered/);
      assert.ok(e.hint?.includes(`searched ${specs}`), e.hint);
      assert.match(e.hint ?? '', /broken\.yaml: line 1: "&" \(anchors, aliases, tags, block scalars\) is YAML slipway does not read/);
      return true;
    });
    // required=false (also the default, as BuildKit's): a warning, and the step runs without it.
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --device=example.com/test=nope,required=false ls /dev > /devs\n`);
    const { out, log } = await build(ctx, { cdiSpecDirs: [specs] });
    assert.ok(log.some((l) => /WARN Optional device "example\.com\/test=nope" is not registered/.test(l)), log.join('\n'));
    assert.doesNotMatch((await layersOf(out, baseLayers)).files.get('devs') ?? '', /slipway-test/);
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --device=example.com/hooked=h true\n`);
    await assert.rejects(build(ctx, { cdiSpecDirs: [specs], allow: ['device'] }), /Dockerfile:2: CDI device example\.com\/hooked=h \(.*hooked\.json\): it has hooks, which slipway does not run/);
    // Under ptrace a device that is there cannot be passed in: one clear error.
    if (noPtrace) return;
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${busybox}\nRUN --device=example.com/test=zero true\n`);
    await assert.rejects(build(ctx, { cdiSpecDirs: [specs], allow: ['device'], isolation: 'ptrace' }), /Dockerfile:2: RUN --device cannot pass a CDI device in here: the ptrace isolation/);
  });
});

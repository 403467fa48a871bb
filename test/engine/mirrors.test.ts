// Base images without the upstream registry: pull mirrors from registries.conf, daemon.json and
// buildkitd.toml take all base traffic, a mirror's wrong content is refused, and base images kept
// in the cache dir cost at most one HEAD per tag (none for a digest), also when upstream is down
// or rate-limiting. Two real registry processes: "upstream" behind a counting proxy, and "mirror".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mirrorRulesFromEnv } from '../../src/registry/index.ts';
import { UserError } from '../../src/errors.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { startProxy, type RecordingProxy } from '../harness/proxy.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { buildContext, makeContext, runMissing } from './helpers.ts';

const missing = registryMissing() ?? fixturesMissing() ?? runMissing();

/** The image requests among `requests`; each build's `GET /v2/` (its scheme probe of a loopback host) left out. */
const calls = (requests: RecordingProxy['requests']) => requests.map((r) => `${r.method} ${r.path}`).filter((c) => c !== 'GET /v2/');

describe('mirrors and base images from the cache', { skip: missing }, () => {
  let upstream: TestRegistry;
  let mirror: TestRegistry;
  let proxy: RecordingProxy;
  let digest: string;
  const dirs: string[] = [];
  const temp = () => { const d = mkdtempSync(join(tmpdir(), 'slipway-mirror-')); dirs.push(d); return d; };

  before(async () => {
    upstream = await startRegistry();
    mirror = await startRegistry();
    digest = (await pushFixture(upstream, 'multiarch', 'library/busybox:1')).digest;
    await pushFixture(mirror, 'multiarch', 'library/busybox:1');
    proxy = await startProxy(upstream.url);
  });
  after(async () => {
    await proxy?.stop();
    await upstream?.stop();
    await mirror?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A config home holding `file` with `text`, and the mirror rules slipway reads from it. */
  const rulesFrom = (file: string, text: string) => {
    const home = temp();
    mkdirSync(join(home, '.config', file, '..'), { recursive: true });
    writeFileSync(join(home, '.config', file), text);
    return mirrorRulesFromEnv({ HOME: home }, { etcDir: join(home, 'no-etc') });
  };
  const dockerfile = (from: string) => `FROM ${from}\nRUN echo built > /built && ls /bin/busybox\n`;
  const mirrorGets = () => mirror.accessLog().filter((e) => e.method === 'GET' && e.path.includes('/library/busybox/')).length;

  const forms: Array<[string, string, (host: string, mirrorHost: string) => string]> = [
    ['registries.conf', 'containers/registries.conf', (h, m) => `[[registry]]\nprefix = "${h}"\nlocation = "${h}"\n[[registry.mirror]]\nlocation = "${m}"\ninsecure = true\n`],
    ['buildkitd.toml', 'buildkit/buildkitd.toml', (h, m) => `[registry."${h}"]\nmirrors = ["${m}"]\n[registry."${m}"]\nhttp = true\n`],
  ];
  for (const [name, file, text] of forms) {
    test(`a mirror in ${name} takes all base traffic: no request reaches upstream`, async () => {
      const before = proxy.requests.length;
      const seen = mirrorGets();
      const ctx = makeContext({ Dockerfile: dockerfile(`${proxy.host}/library/busybox:1`) });
      const { log } = await buildContext(ctx, { mirrorConfig: rulesFrom(file, text(proxy.host, mirror.host)), outputs: ['type=oci,dest=' + join(ctx, 'out.tar')] });
      assert.equal(proxy.requests.length - before, 0, `upstream saw: ${JSON.stringify(proxy.requests.slice(before))}`);
      assert.ok(mirrorGets() - seen >= 3, 'manifest, config and layer came from the mirror');
      assert.ok(!log.some((l) => l.startsWith('WARN')), log.join('\n'));
    });
  }

  test('daemon.json registry-mirrors serve Docker Hub images (here with no network at all)', async () => {
    const rules = rulesFrom('docker/daemon.json', JSON.stringify({ 'registry-mirrors': [`http://${mirror.host}`] }));
    const seen = mirrorGets();
    const ctx = makeContext({ Dockerfile: dockerfile('busybox:1') });
    await buildContext(ctx, { mirrorConfig: rules, outputs: ['type=oci,dest=' + join(ctx, 'out.tar')] });
    assert.ok(mirrorGets() - seen >= 3);
  });

  test('--registry-mirror; a mirror whose bytes do not match the digest is refused with a warning, upstream serves', async () => {
    const bad = await startProxy(mirror.url);
    try {
      bad.addFault({ method: 'GET', path: /\/manifests\/sha256:/, times: 10, fault: { corruptBody: true } });
      const before = proxy.requests.length;
      const ctx = makeContext({ Dockerfile: dockerfile(`${proxy.host}/library/busybox@${digest}`) });
      const { log, result } = await buildContext(ctx, { registryMirrors: [`${proxy.host}=http://${bad.host}`], outputs: ['type=oci,dest=' + join(ctx, 'out.tar')] });
      assert.ok(log.some((l) => /^WARN mirror 127\.0\.0\.1:\d+ could not serve .* does not match/.test(l)), log.join('\n'));
      assert.ok(proxy.requests.length > before, 'upstream served the image');
      assert.equal(result.steps.run, 1);
    } finally {
      await bad.stop();
    }
  });

  test('a restored cache dir: one HEAD per tag, none for a digest, no layer downloaded again', async () => {
    const cacheDir = temp();
    const tagged = `${proxy.host}/library/busybox:1`;
    const first = makeContext({ Dockerfile: dockerfile(tagged) });
    await buildContext(first, { cacheDir });
    // A new RUN needs the base's files: they come from the cache dir, the tag costs one HEAD.
    let before = proxy.requests.length;
    const second = makeContext({ Dockerfile: `FROM ${tagged}\nRUN echo other > /other\n` });
    const { result } = await buildContext(second, { cacheDir });
    assert.equal(result.steps.run, 1);
    assert.deepEqual(calls(proxy.requests.slice(before)), ['HEAD /v2/library/busybox/manifests/1']);
    // Two platforms of one build share the tag's one HEAD (and so see the same index).
    const twoPlatforms = makeContext({ Dockerfile: `FROM ${tagged}\nENV BOTH=1\n` });
    await buildContext(twoPlatforms, { cacheDir, platforms: ['linux/amd64', 'linux/arm64'] });
    before = proxy.requests.length;
    await buildContext(twoPlatforms, { cacheDir, platforms: ['linux/amd64', 'linux/arm64'] });
    assert.deepEqual(calls(proxy.requests.slice(before)), ['HEAD /v2/library/busybox/manifests/1']);
    const pinned = makeContext({ Dockerfile: `FROM ${proxy.host}/library/busybox@${digest}\nRUN echo pinned > /p\n` });
    await buildContext(pinned, { cacheDir });
    const pinnedAgain = makeContext({ Dockerfile: `FROM ${proxy.host}/library/busybox@${digest}\nRUN echo pinned again > /p\n` });
    before = proxy.requests.length;
    await buildContext(pinnedAgain, { cacheDir });
    assert.deepEqual(proxy.requests.slice(before), [], 'a digest-pinned base costs no request at all');
    // --pull resolves afresh.
    before = proxy.requests.length;
    await buildContext(second, { cacheDir, pull: true });
    assert.ok(proxy.requests.slice(before).some((r) => r.method === 'GET' && r.path.includes('/manifests/')));
  });

  test('a runner with only a registry cache (--cache-from): one HEAD per tag to upstream, the resolution comes from the cache', async () => {
    const tagged = `${proxy.host}/library/busybox:1`;
    const cacheRef = `${mirror.host}/cache/app:buildcache`;
    const ctx = makeContext({ Dockerfile: dockerfile(tagged) });
    await buildContext(ctx, { cacheDir: temp(), cacheTo: `type=registry,ref=${cacheRef}` });
    const before = proxy.requests.length;
    const { result } = await buildContext(ctx, { cacheDir: temp(), cacheFrom: [`type=registry,ref=${cacheRef}`] });
    assert.deepEqual(result.steps, { run: 0, cached: 1 });
    assert.deepEqual(calls(proxy.requests.slice(before)), ['HEAD /v2/library/busybox/manifests/1']);
  });

  test('upstream answering 429 or gone: the cached resolution is used with one warning', async () => {
    const cacheDir = temp();
    const flaky = await startProxy(upstream.url);
    try {
      const ref = `${flaky.host}/library/busybox:1`;
      await buildContext(makeContext({ Dockerfile: dockerfile(ref) }), { cacheDir });
      flaky.addFault({ method: 'HEAD', path: /\/manifests\//, times: 100, fault: { status: 429, retryAfter: '3600' } });
      const limited = await buildContext(makeContext({ Dockerfile: `FROM ${ref}\nRUN echo a > /a\n` }), { cacheDir });
      const warnings = limited.log.filter((l) => l.startsWith('WARN'));
      assert.equal(warnings.length, 1, warnings.join('\n'));
      assert.match(warnings[0], /the registry did not answer \(.*rate-limiting.*\); using the cached linux\/amd64 image sha256:/);
    } finally {
      await flaky.stop();
    }
    const gone = await buildContext(makeContext({ Dockerfile: `FROM ${flaky.host}/library/busybox:1\nRUN echo b > /b\n` }), { cacheDir });
    assert.equal(gone.log.filter((l) => /^WARN .*the registry did not answer/.test(l)).length, 1);
  });

  test('a 429 with a long Retry-After and no cache: one clear error, at once', async () => {
    const limited = await startProxy(upstream.url);
    try {
      limited.addFault({ path: /\/manifests\//, times: 100, fault: { status: 429, retryAfter: '3600' } });
      const started = Date.now();
      await assert.rejects(buildContext(makeContext({ Dockerfile: dockerfile(`${limited.host}/library/busybox:1`) })), (e: unknown) => {
        assert.ok(e instanceof UserError);
        assert.match(e.message, /registry 127\.0\.0\.1:\d+ is rate-limiting these pulls: it answered 429 Too Many Requests and asks to wait 3600 s/);
        assert.match(e.hint ?? '', /log in .* or pull through a mirror \(--registry-mirror/);
        return true;
      });
      assert.ok(Date.now() - started < 10_000, 'no minutes of retries');
    } finally {
      await limited.stop();
    }
  });
});

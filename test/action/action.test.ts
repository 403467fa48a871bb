// The bundled action end to end, as the runner runs it: main then post in fresh Node processes,
// against the real registry (distribution) and the cache service stand-in (Twirp routes + Azurite),
// with the real @actions/core and @actions/cache inside the bundle. Digests are checked with skopeo.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture, skopeoRawManifest } from '../harness/fixtures.ts';
import { startCacheService, type CacheService } from '../harness/cache-service.ts';
import { elevatedFlag, ownerVariable } from '../../src/action/privilege.ts';
import { cacheKeyPrefix } from '../../src/action/cache/index.ts';
import { ensureBundle, giveJobTo, newJob, runStep, type StepRun } from './helpers.ts';

const missing = registryMissing() ?? fixturesMissing();
const runMissing = process.getuid?.() !== 0 ? 'RUN steps here need root' : undefined;

function sha256(b: Buffer): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

/** Every file under `dir`, gzip layers unpacked, for searching a secret in the cache. */
function cacheFileContents(dir: string): Buffer[] {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const b = readFileSync(p);
        out.push(b);
        if (b[0] === 0x1f && b[1] === 0x8b) out.push(gunzipSync(b));
      }
    }
  };
  walk(dir);
  return out;
}

function explain(r: StepRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

describe('the bundled action', { skip: missing }, () => {
  let reg: TestRegistry;
  let cache: CacheService;
  let busybox: string;

  before(async () => {
    await ensureBundle();
    [reg, cache] = await Promise.all([startRegistry(), startCacheService()]);
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
  });
  after(async () => {
    await Promise.all([reg?.stop(), cache?.stop()]);
  });

  test('first run builds, pushes and saves the cache; a second job on an empty RUNNER_TEMP restores it and every step is a hit', { skip: runMissing }, async () => {
    cache.setFault('none');
    const secret = 'tok-' + Math.random().toString(36).slice(2) + '-S3CRET';
    const files = {
      Dockerfile: [
        `FROM ${busybox}`,
        'COPY app.txt /srv/app.txt',
        'RUN --mount=type=secret,id=api_token echo "token is $(cat /run/secrets/api_token)" && mkdir -p /out && uname -m > /out/arch',
        'RUN echo "::error::injected from a RUN step" && echo done > /out/done',
        '',
      ].join('\n'),
      'app.txt': 'hello\n',
    };
    const tag = `${reg.host}/action/app:1`;
    const inputs = { platforms: 'linux/amd64', tags: tag, push: 'true', 'source-date-epoch': '1700000000', secrets: `api_token=${secret}` };

    const job1 = newJob(files);
    const main1 = await runStep('main', job1, { inputs, env: cache.env });
    assert.equal(main1.code, 0, explain(main1));
    assert.deepEqual(main1.errors, [], 'a workflow command in RUN output is fenced, not obeyed');
    assert.equal((main1.stdout.match(/^::error::injected from a RUN step$/m) ?? []).length, 1, 'but it is shown');
    assert.deepEqual(main1.warnings, []);

    // Masked before anything could print it; never in outputs, state or the summary.
    const maskAt = main1.stdout.indexOf(`::add-mask::${secret}`);
    assert.ok(maskAt >= 0, 'the secret is masked');
    assert.equal(main1.stdout.indexOf(secret), maskAt + '::add-mask::'.length, 'the mask comes before the first echo');
    for (const text of [JSON.stringify(main1.outputs), main1.summary, JSON.stringify(main1.state)]) assert.ok(!text.includes(secret));

    // Outputs against what skopeo reads back from the registry.
    const raw = await skopeoRawManifest(reg, tag);
    assert.equal(main1.outputs.digest, sha256(raw));
    const manifest = JSON.parse(raw.toString()) as { config: { digest: string }; layers: unknown[] };
    assert.equal(main1.outputs.imageid, manifest.config.digest, 'one platform: the config digest is the image id');
    assert.deepEqual(JSON.parse(main1.outputs['platform-digests']), { 'linux/amd64': main1.outputs.digest });
    const metadata = JSON.parse(main1.outputs.metadata);
    assert.equal(metadata['containerimage.digest'], main1.outputs.digest);
    assert.equal(metadata['containerimage.config.digest'], manifest.config.digest);
    assert.equal(metadata['image.name'], tag);
    assert.deepEqual(metadata.steps, { run: 3, cached: 0 });
    assert.match(main1.summary, new RegExp(`\\| linux/amd64 \\| \`${main1.outputs.digest}\` \\| [^|]+ \\| ${manifest.layers.length} \\|`));
    assert.ok(main1.summary.includes(`\`${tag}\``), 'the tag pushed is in the summary');
    assert.match(main1.summary, /\*\*Steps:\*\* 3 run, 0 cached/);
    assert.match(main1.summary, /\*\*Layer cache:\*\* no entry yet for scope `default-linux-amd64`/);
    assert.match(main1.stdout, /^::group::\[stage-0 3\/4\] RUN --mount=type=secret,id=api_token .*DONE \d+\.\ds$/m);

    const post1 = await runStep('post', job1, { env: cache.env });
    assert.equal(post1.code, 0, explain(post1));
    assert.deepEqual(post1.warnings, [], explain(post1));
    const saved = cache.entries().filter((e) => e.finalized);
    assert.ok(saved.some((e) => e.key.startsWith(cacheKeyPrefix('layers', 'default-linux-amd64'))), JSON.stringify(saved));
    for (const content of cacheFileContents(join(job1.runnerTemp, 'slipway-cache'))) assert.ok(!content.includes(secret), 'the secret is nowhere in the cache');

    // The next job: the same paths, nothing in RUNNER_TEMP; the cache comes from the service.
    const job2 = newJob(files, job1);
    const logBefore = (await reg.settledLog()).length;
    const main2 = await runStep('main', job2, { inputs, env: cache.env });
    assert.equal(main2.code, 0, explain(main2));
    // The base image came from the restored cache: one HEAD of its tag, no manifest, config or layer GET.
    const baseRequests = (await reg.settledLog()).slice(logBefore).filter((e) => e.path.startsWith('/v2/library/busybox/'));
    assert.deepEqual(baseRequests.map((e) => `${e.method} ${e.path}`), ['HEAD /v2/library/busybox/manifests/1']);
    assert.match(main2.stdout, /Layer cache: restored \d+ blobs/);
    assert.equal(main2.outputs.digest, main1.outputs.digest, 'same inputs, same digest');
    assert.deepEqual(JSON.parse(main2.outputs.metadata).steps, { run: 0, cached: 3 }, explain(main2));
    assert.match(main2.summary, /\*\*Steps:\*\* 0 run, 3 cached/);
    assert.match(main2.summary, /\*\*Layer cache:\*\* restored from `slipway-v1-layers-/);
    assert.doesNotMatch(main2.stdout, /^::group::\[[^\n]*\] (RUN|COPY)[^\n]*DONE/m, 'no step ran');
    assert.equal((main2.stdout.match(/^::group::\[[^\n]*\] (RUN|COPY)[^\n]*CACHED$/gm) ?? []).length, 3);
    assert.ok(!main2.stdout.includes(`token is ${secret}`), 'a cached step does not run again');

    const entriesBefore = cache.entries().length;
    const post2 = await runStep('post', job2, { env: cache.env });
    assert.equal(post2.code, 0, explain(post2));
    assert.match(post2.stdout, /Layer cache: unchanged since restore/);
    assert.equal(cache.entries().length, entriesBefore, 'nothing new to save');
  });

  test('a multi-platform push: the digest output is the index skopeo reads, platform-digests its manifests, per-arch tags pushed', async () => {
    const job = newJob({ Dockerfile: `FROM ${busybox}\nCOPY app.txt /srv/\n`, 'app.txt': 'multi\n' });
    const tag = `${reg.host}/action/multi:2`;
    const r = await runStep('main', job, { inputs: { platforms: 'linux/arm64\nlinux/amd64', tags: tag, push: 'true', 'per-arch-tags': 'true', cache: 'false' } });
    assert.equal(r.code, 0, explain(r));
    const raw = await skopeoRawManifest(reg, tag);
    assert.equal(r.outputs.digest, sha256(raw));
    assert.equal(r.outputs.imageid, r.outputs.digest, 'several platforms: the index is the image id');
    const index = JSON.parse(raw.toString()) as { manifests: { digest: string; platform: { os: string; architecture: string } }[] };
    const fromRegistry = Object.fromEntries(index.manifests.map((m) => [`${m.platform.os}/${m.platform.architecture}`, m.digest]));
    assert.deepEqual(JSON.parse(r.outputs['platform-digests']), fromRegistry);
    for (const [platform, digest] of Object.entries(fromRegistry)) {
      const manifest = await skopeoRawManifest(reg, `${reg.host}/action/multi@${digest}`);
      const layers = (JSON.parse(manifest.toString()) as { layers: unknown[] }).layers.length;
      assert.match(r.summary, new RegExp(`\\| ${platform} \\| \`${digest}\` \\| [^|]+ \\| ${layers} \\|`));
      const arch = platform.split('/')[1];
      assert.equal(sha256(await skopeoRawManifest(reg, `${tag}-${arch}`)), digest, `per-arch tag ${tag}-${arch}`);
      assert.ok(r.summary.includes(`\`${tag}-${arch}\``));
    }
    assert.ok(r.summary.includes(`Index: \`${r.outputs.digest}\``));
  });

  // One budget (cache-timeout, 3 s here) for restore and save together, whatever the fault: the
  // restore gets it first, the post step what is left, and a fault costs one warning in all.
  const budgetS = 3;
  const faults = ['error', 'throttle', 'hang', 'truncate', 'trickle'] as const;
  let baselineMs = 0;
  for (const fault of [...faults, 'hang-in-post'] as const) {
    test(`a cache service fault (${fault}) costs one warning and at most the one cache-timeout budget for restore and save together`, async (t) => {
      const files = { Dockerfile: `FROM scratch\nCOPY a.txt /a.txt\n`, 'a.txt': fault };
      const inputs = { outputs: 'type=oci,dest=out/image.tar', 'cache-timeout': String(budgetS), 'cache-scope': `fault-${fault}` };
      // A first job saves an entry, so the faulty job's restore has something to download.
      const seed = newJob(files);
      const seedMain = await runStep('main', seed, { inputs, env: cache.env, limitMs: 30_000 });
      assert.equal(seedMain.code, 0, explain(seedMain));
      assert.equal((await runStep('post', seed, { env: cache.env, limitMs: 30_000 })).warnings.length, 0);
      if (baselineMs === 0) baselineMs = seedMain.ms;
      const job = newJob({ ...files, 'a.txt': `${fault} again` }, seed); // new content: the post step has something to save
      try {
        if (fault !== 'hang-in-post') cache.setFault(fault);
        const main = await runStep('main', job, { inputs, env: cache.env, limitMs: 30_000 });
        assert.equal(main.code, 0, explain(main));
        assert.deepEqual(main.errors, []);
        assert.ok(statSync(join(job.workspace, 'out/image.tar')).size > 0);
        assert.match(main.outputs.digest, /^sha256:[a-f0-9]{64}$/);
        if (fault === 'hang-in-post') cache.setFault('hang');
        const post = await runStep('post', job, { env: cache.env, limitMs: 30_000 });
        assert.equal(post.code, 0, explain(post));
        const warnings = [...main.warnings, ...post.warnings];
        assert.equal(warnings.length, 1, explain(main) + explain(post));
        assert.match(warnings[0], fault === 'hang-in-post' ? /Layer cache: save took longer/ : /Layer cache: restore (failed|took longer)/);
        const lost = main.ms + post.ms - baselineMs;
        t.diagnostic(`${fault}: ${Math.round(lost)} ms more than a fault-free main step (budget ${budgetS * 1000} ms)`);
        assert.ok(lost < budgetS * 1000 + 2500, `the fault cost ${Math.round(lost)} ms`);
      } finally {
        cache.setFault('none');
      }
    });
  }

  test('bad inputs fail the step with one clear error annotation', async () => {
    const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
      [{ Dockerfile: 'FROM scratch\n' }, { platforms: 'linux/amd64,linux/arm64/v8/extra' }, /invalid platform "linux\/arm64\/v8\/extra"/],
      [{ 'README.md': 'no Dockerfile here\n' }, {}, /cannot read Dockerfile .*workspace\/Dockerfile/],
      [{ Dockerfile: 'FROM scratch\n' }, { push: 'yes please' }, /input "push" is "yes please": expected true or false/],
      [{ Dockerfile: 'FROM scratch\n' }, { push: 'true' }, /pushing needs at least one tag/],
      [{ Dockerfile: 'FROM scratch\nFROBNICATE all\n' }, { outputs: 'type=oci,dest=x.tar' }, /frobnicate/i],
    ];
    for (const [files, inputs, expected] of cases) {
      const job = newJob(files);
      const r = await runStep('main', job, { inputs: { cache: 'false', ...inputs }, limitMs: 30_000 });
      assert.equal(r.code, 1, explain(r));
      assert.equal(r.errors.length, 1, explain(r));
      assert.match(r.errors[0], expected);
      assert.deepEqual(r.outputs, {});
    }
  });

  test('secret values never reach a file a failing build writes either, and secret-files are read from the workspace', async () => {
    const secret = 'filesecret-' + Math.random().toString(36).slice(2);
    const job = newJob({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a', 'creds/token.txt': secret + '\n' });
    const r = await runStep('main', job, { inputs: { 'secret-files': 'tok=creds/token.txt', secrets: 'inline=abc,def=ghi', cache: 'false' } });
    assert.equal(r.code, 0, explain(r));
    assert.ok(r.stdout.includes(`::add-mask::${secret}`));
    assert.ok(r.stdout.includes('::add-mask::abc,def=ghi'), 'an inline value keeps its commas and = signs');
    const missingFile = await runStep('main', newJob({ Dockerfile: 'FROM scratch\n' }), { inputs: { 'secret-files': 'tok=nope.txt', cache: 'false' } });
    assert.equal(missingFile.code, 1);
    assert.equal(missingFile.errors.length, 1);
    assert.match(missingFile.errors[0], /secret "tok": cannot read file .*nope\.txt/);
  });

  test('the process started through sudo takes its environment from stdin and hands outputs back to the runner user', async () => {
    const job = newJob({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a' });
    const handed: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root',
      GITHUB_WORKSPACE: job.workspace, RUNNER_TEMP: job.runnerTemp,
      GITHUB_OUTPUT: job.files.output, GITHUB_STATE: job.files.state, GITHUB_STEP_SUMMARY: job.files.summary,
      'INPUT_OUTPUTS': 'type=oci,dest=out/deep/image.tar', INPUT_CACHE: 'false', [ownerVariable]: '4321:4322',
    };
    // What sudo passes: only the flag; every other variable arrives on stdin.
    const r = await runStep('main', job, { env: { [elevatedFlag]: '1', GITHUB_WORKSPACE: '/nonexistent', GITHUB_OUTPUT: '/nonexistent/out' }, stdin: JSON.stringify(handed) });
    assert.equal(r.code, 0, explain(r));
    assert.match(r.outputs.digest, /^sha256:/);
    for (const p of ['out', 'out/deep', 'out/deep/image.tar']) {
      const st = statSync(join(job.workspace, p));
      assert.deepEqual([st.uid, st.gid], [4321, 4322], `${p} belongs to the runner user`);
    }
    assert.equal(statSync(job.workspace).uid, 0, 'the workspace itself is left alone');
    const cacheDir = statSync(join(job.runnerTemp, 'slipway-cache'));
    assert.deepEqual([cacheDir.uid, cacheDir.gid], [4321, 4322], 'no post step will save the cache (cache: false): the cache dir is handed back now');
  });

  test('as a non-root runner user: no sudo for a build without RUN, and outputs belong to that user', { skip: process.getuid?.() !== 0 ? 'needs root to switch users' : undefined }, async () => {
    const nobody = { uid: 65534, gid: 65534 };
    const job = newJob({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a' });
    await giveJobTo(job, nobody);
    const r = await runStep('main', job, { inputs: { outputs: 'type=oci,dest=out/image.tar', cache: 'false' }, user: nobody, env: { HOME: '/nonexistent' } });
    assert.equal(r.code, 0, explain(r));
    assert.doesNotMatch(r.stdout, /sudo/);
    const st = statSync(join(job.workspace, 'out/image.tar'));
    assert.deepEqual([st.uid, st.gid], [65534, 65534]);

    // With RUN steps and no sudo on this machine, the build runs as the user (rootless); it says so.
    const withRun = newJob({ Dockerfile: `FROM ${busybox}\nRUN echo hi > /hi\n` });
    await giveJobTo(withRun, nobody);
    const r2 = await runStep('main', withRun, { inputs: { outputs: 'type=oci,dest=out/image.tar', cache: 'false' }, user: nobody, env: { HOME: '/nonexistent' } });
    assert.match(r2.stdout, /Building as uid 65534 \(no password-less sudo: RUN steps run rootless\)/, explain(r2));
    if (r2.code !== 0) {
      // Only a machine without unprivileged user namespaces may refuse, with one clear error.
      assert.equal(r2.errors.length, 1, explain(r2));
      assert.match(r2.errors[0], /user namespace/i);
    } else {
      assert.match(r2.stdout, /::group::\[stage-0 2\/2\] RUN echo hi > \/hi {2}DONE/);
    }

    // isolation: ptrace asks for no privileges at all: no sudo, RUN through proot as the runner user.
    const ptrace = newJob({ Dockerfile: `FROM ${busybox}\nRUN echo hi > /hi\n` });
    await giveJobTo(ptrace, nobody);
    const r3 = await runStep('main', ptrace, { inputs: { outputs: 'type=oci,dest=out/image.tar', cache: 'false', isolation: 'ptrace' }, user: nobody, env: { HOME: '/nonexistent' } });
    assert.equal(r3.code, 0, explain(r3));
    assert.doesNotMatch(r3.stdout, /sudo/);
    assert.match(r3.stdout, /RUN isolation: ptrace/);
    assert.match(r3.stdout, /::group::\[stage-0 2\/2\] RUN echo hi > \/hi {2}DONE/);
  });
});

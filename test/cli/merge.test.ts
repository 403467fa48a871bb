// A matrix of native runners with no merge job, against the real registry: the bundled CLI
// (dist/cli.js, `npm run build` first) started twice at once — one platform each, the same merge
// id, random start skews — leaves one index with both platforms under every tag, every round; the
// index is the same bytes whichever job wrote it; a platform that never comes leaves no index and
// a line naming it. Every loop is bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient, mergedIndex, parseReference } from '../../src/registry/index.ts';
import { MediaType, type Index } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bundle = join(root, 'dist/cli.js');
const skip = registryMissing() ?? (existsSync(bundle) ? undefined : 'dist/cli.js missing: npm run build');

let reg: TestRegistry;
let client: RegistryClient;
const caches = { amd64: mkdtempSync(join(tmpdir(), 'slipway-merge-a-')), arm64: mkdtempSync(join(tmpdir(), 'slipway-merge-b-')), s390x: '' };
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  client = new RegistryClient();
});
after(async () => {
  await client?.close();
  await reg?.stop();
});

interface Run { code: number | null; stdout: string; stderr: string }

function build(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [bundle, 'build', '--progress', 'plain', ...args], {
    env: { ...process.env, SOURCE_DATE_EPOCH: '0', GITHUB_RUN_ID: '', CI_PIPELINE_ID: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((ok) => child.once('close', (code) => {
    clearTimeout(timer);
    ok({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
  }));
}

function context(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-merge-ctx-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /\n');
  writeFileSync(join(dir, 'hello.txt'), text);
  return dir;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One matrix job: builds `arch` and takes part in merge `id`. */
function job(ctx: string, arch: 'amd64' | 'arm64', id: string, repo: string, platforms = 'linux/amd64,linux/arm64'): Promise<Run> {
  return build(['--platform', `linux/${arch}`, '--push', '-t', `${reg.host}/${repo}:a`, '-t', `${reg.host}/${repo}:b`,
    '--merge-platforms', platforms, '--cache-dir', caches[arch], ctx], id.startsWith('env:') ? { GITHUB_RUN_ID: id.slice(4), GITHUB_RUN_ATTEMPT: '2' } : {});
}

const digestOf = (r: Run) => /^digest: (sha256:[0-9a-f]{64})$/m.exec(r.stderr)?.[1];

/** The index under `tag`, with its digest; undefined when the tag is not there. */
async function indexAt(ref: string): Promise<{ digest: string; index: Index; mediaType: string } | undefined> {
  const r = parseReference(ref);
  if ((await client.headManifest(r)) === undefined) return undefined;
  const m = await client.getManifest(r);
  return { digest: m.digest, index: JSON.parse(m.bytes.toString()) as Index, mediaType: m.mediaType };
}

test('two jobs started at once, 20 rounds with random skews: one index with both platforms under every tag', { skip, timeout: 300_000 }, async (t) => {
  const repo = 'merge/app';
  const writers: Record<string, number> = { amd64: 0, arm64: 0 };
  for (let round = 0; round < 20; round++) {
    const ctx = context(`round ${round}\n`);
    const id = `run${round}-1`;
    const skew = [Math.floor(Math.random() * 250), Math.floor(Math.random() * 250)];
    const [amd, arm] = await Promise.all([
      sleep(skew[0]).then(() => build(['--platform', 'linux/amd64', '--push', '-t', `${reg.host}/${repo}:a`, '-t', `${reg.host}/${repo}:b`, '--merge-platforms', 'linux/amd64,linux/arm64', '--merge-id', id, '--cache-dir', caches.amd64, ctx])),
      sleep(skew[1]).then(() => build(['--platform', 'linux/arm64', '--push', '-t', `${reg.host}/${repo}:a`, '-t', `${reg.host}/${repo}:b`, '--merge-platforms', 'linux/amd64,linux/arm64', '--merge-id', id, '--cache-dir', caches.arm64, ctx])),
    ]);
    assert.equal(amd.code, 0, amd.stderr);
    assert.equal(arm.code, 0, arm.stderr);
    const a = await indexAt(`${reg.host}/${repo}:a`);
    const b = await indexAt(`${reg.host}/${repo}:b`);
    assert.ok(a && b, `round ${round}: a tag is missing`);
    assert.equal(a.digest, b.digest, `round ${round}: the tags differ`);
    assert.equal(a.mediaType, MediaType.ociIndex);
    assert.deepEqual(a.index.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}`), ['linux/amd64', 'linux/arm64'], `round ${round}`);
    // The index lists this round's manifests (each job printed its own platform manifest or the index).
    const manifests = await Promise.all(a.index.manifests.map((m) => client.getManifest(parseReference(`${reg.host}/${repo}@${m.digest}`))));
    const expected = mergedIndex(manifests.map((m, i) => ({ platform: a.index.manifests[i].platform!, digest: m.digest, mediaType: m.mediaType, bytes: m.bytes })));
    assert.equal(a.digest, expected.digest, `round ${round}: the index is not the pure merge of its manifests`);
    const wrote = [amd, arm].filter((r) => /every platform is pushed/.test(r.stderr));
    assert.ok(wrote.length >= 1, `round ${round}: no job wrote the index:\n${amd.stderr}\n${arm.stderr}`);
    for (const r of wrote) assert.equal(digestOf(r), a.digest, 'a writer reports the index digest');
    for (const r of [amd, arm].filter((x) => !wrote.includes(x))) assert.match(r.stderr, /still missing linux\/(amd64|arm64)/);
    if (/every platform is pushed/.test(amd.stderr)) writers.amd64++;
    if (/every platform is pushed/.test(arm.stderr)) writers.arm64++;
  }
  assert.ok(writers.amd64 + writers.arm64 >= 20);
  t.diagnostic(`index written by amd64 ${writers.amd64}x, arm64 ${writers.arm64}x (both in a round count twice)`);
});

test('the index is the same bytes whichever job finishes last; the merge id defaults to the GitHub run', { skip, timeout: 120_000 }, async () => {
  const ctx = context('same either way\n');
  // amd64 first, then arm64 writes the index; then the other order in another repository.
  const first = [await job(ctx, 'amd64', 'env:77', 'order/one')];
  // The record tags name the run and the platform, and point at the platform manifests.
  const rec = await client.getManifest(parseReference(`${reg.host}/order/one:slipway-merge-77-2-linux-amd64`));
  first.push(await job(ctx, 'arm64', 'env:77', 'order/one'));
  const second = [await job(ctx, 'arm64', 'env:78', 'order/two'), await job(ctx, 'amd64', 'env:78', 'order/two')];
  for (const r of [...first, ...second]) assert.equal(r.code, 0, r.stderr);
  assert.match(first[0].stderr, /merge 77-2: still missing linux\/arm64/);
  assert.match(second[0].stderr, /merge 78-2: still missing linux\/amd64/);
  const one = await indexAt(`${reg.host}/order/one:a`);
  const two = await indexAt(`${reg.host}/order/two:a`);
  assert.ok(one && two);
  assert.equal(one.digest, two.digest);
  assert.equal(digestOf(first[1]), one.digest);
  assert.equal(digestOf(second[1]), two.digest);
  assert.equal(rec.digest, one.index.manifests.find((m) => m.platform!.architecture === 'amd64')!.digest);
  // Once the index is under every tag, the records are removed (the harness registry allows deletion).
  assert.match(first[1].stderr, /merge 77-2: removed the record tags slipway-merge-77-2-linux-amd64, slipway-merge-77-2-linux-arm64/);
  const tags = (await (await fetch(`${reg.url}/v2/order/one/tags/list`)).json()) as { tags: string[] };
  assert.deepEqual(tags.tags.sort(), ['a', 'b']);
});

test('a registry that allows no deletion keeps the record tags, quietly', { skip, timeout: 120_000 }, async () => {
  const locked = await startRegistry({ deleteEnabled: false });
  try {
    const ctx = context('kept records\n');
    const run = (arch: 'amd64' | 'arm64') => build(['--platform', `linux/${arch}`, '--push', '-t', `${locked.host}/kept/app:a`,
      '--merge-platforms', 'linux/amd64,linux/arm64', '--merge-id', 'k1', '--cache-dir', caches[arch], ctx]);
    const runs = [await run('amd64'), await run('arm64')];
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.match(runs[1].stderr, /every platform is pushed/);
    assert.doesNotMatch(runs[1].stderr, /removed the record tags|warning/i);
    const tags = (await (await fetch(`${locked.url}/v2/kept/app/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags.sort(), ['a', 'slipway-merge-k1-linux-amd64', 'slipway-merge-k1-linux-arm64']);
  } finally {
    await locked.stop();
  }
});

test('a platform that never comes: no index under any tag, and a line naming it', { skip, timeout: 120_000 }, async () => {
  const ctx = context('incomplete\n');
  const three = 'linux/amd64,linux/arm64,linux/s390x';
  const runs = await Promise.all([job(ctx, 'amd64', 'env:90', 'missing/app', three), job(ctx, 'arm64', 'env:90', 'missing/app', three)]);
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /merge 90-2: still missing (linux\/(amd64|arm64), )?linux\/s390x in /);
  }
  assert.equal(await indexAt(`${reg.host}/missing/app:a`), undefined);
  assert.equal(await indexAt(`${reg.host}/missing/app:b`), undefined);
});

test('bad merge input is one clear error before the build', { skip }, async () => {
  const ctx = context('x\n');
  const noId = await build(['--push', '-t', `${reg.host}/bad/app:a`, '--merge-platforms', 'linux/amd64', ctx]);
  assert.equal(noId.code, 1);
  assert.match(noId.stderr, /--merge-platforms needs a merge id shared by the jobs of one run/);
  const other = await build(['--platform', 'linux/arm64', '--push', '-t', `${reg.host}/bad/app:a`, '--merge-platforms', 'linux/amd64', '--merge-id', 'x1', ctx]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /this job builds linux\/arm64, which --merge-platforms \(linux\/amd64\) does not name/);
  assert.doesNotMatch(other.stderr, /pushing/, 'refused before the build');
  const badPlatform = await build(['--push', '-t', `${reg.host}/bad/app:a`, '--merge-platforms', 'linux/amd64,linux/armm64', '--merge-id', 'x1', ctx]);
  assert.match(badPlatform.stderr, /--merge-platforms: invalid platform "linux\/armm64"/);
  const noPush = await build(['-t', `${reg.host}/bad/app:a`, '--merge-platforms', 'linux/amd64', '--merge-id', 'x1', ctx]);
  assert.match(noPush.stderr, /--merge-platforms merges pushed images: add --push/);
});

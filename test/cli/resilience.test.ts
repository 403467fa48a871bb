// The bundled CLI (dist/cli.js, `npm run build` first) under crashes and neighbours, against the
// real registry: builds + pushes SIGKILLed at random moments never leave a tag or index pointing at
// missing content, and the next build on that cache dir gives the uninterrupted digest; four
// builds at once on one cache dir give what serial builds give. Every loop is bounded.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import { isIndexMediaType, type Index, type Manifest } from '../../src/oci/index.ts';
import { diskUsage } from '../../src/cache/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bundle = join(root, 'dist/cli.js');
const skip = registryMissing() ?? fixturesMissing() ?? (existsSync(bundle) ? undefined : 'dist/cli.js missing: npm run build');
const runSkip = skip ?? (process.getuid?.() !== 0 ? 'RUN needs root here' : undefined);

let reg: TestRegistry;
let busybox: string;
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
});
after(async () => { await reg?.stop(); });

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; ms: number }

/** One `slipway build`; with `killAfterMs`, SIGKILLed then (if still running). */
function build(args: string[], o: { killAfterMs?: number } = {}): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [bundle, 'build', '--progress', 'quiet', ...args], { env: { ...process.env, SOURCE_DATE_EPOCH: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  const timers = [setTimeout(() => child.kill('SIGKILL'), 60_000)];
  if (o.killAfterMs !== undefined) timers.push(setTimeout(() => child.kill('SIGKILL'), o.killAfterMs));
  return new Promise((ok) => child.once('close', (code, signal) => {
    for (const t of timers) clearTimeout(t);
    ok({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), ms: performance.now() - started });
  }));
}

function context(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-res-'));
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
  return dir;
}

/** Every tag of `repo` resolves, through its index, to manifests and blobs the registry has. */
async function assertComplete(client: RegistryClient, repo: string, tags: string[]): Promise<number> {
  let complete = 0;
  for (const tag of tags) {
    const ref = parseReference(`${reg.host}/${repo}:${tag}`);
    if ((await client.headManifest(ref)) === undefined) continue;
    const top = await client.getManifest(ref);
    const manifests = isIndexMediaType(top.mediaType) ? (JSON.parse(top.bytes.toString()) as Index).manifests.map((m) => m.digest) : [top.digest];
    for (const d of manifests) {
      const m = await client.getManifest(parseReference(`${reg.host}/${repo}@${d}`));
      const parsed = JSON.parse(m.bytes.toString()) as Manifest;
      for (const b of [parsed.config, ...parsed.layers]) assert.ok(await client.hasBlob(ref, b.digest), `${repo}:${tag} → ${d} → ${b.digest} is missing`);
    }
    complete++;
  }
  return complete;
}

/** Processes whose command line names `dir` (a runtime or build left behind by a kill). */
function processesNaming(dir: string): string[] {
  const out: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir)) out.push(`${pid}: ${cmd}`);
    } catch { /* gone meanwhile */ }
  }
  return out;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[1]?.startsWith(dir));
}

test('SIGKILL at random moments of build + push (24 rounds): no tag points at missing content; the next build gives the same digest', { skip: runSkip }, async (t) => {
  const ctx = context({
    Dockerfile: `FROM ${busybox}\nRUN echo built > /built && seq 1 60000 > /noise\nCOPY a.txt /a.txt\n`,
    'a.txt': 'crash test\n'.repeat(5000),
  });
  const client = new RegistryClient({ retries: 1, timeoutMs: 5000 });
  const reference = await build(['--cache-dir', mkdtempSync(join(tmpdir(), 'slipway-res-ref-')), '--platform', 'linux/amd64,linux/arm64', '-t', `${reg.host}/crash/ref:1`, '--push', ctx]);
  assert.equal(reference.code, 0, reference.stderr);
  const cache = mkdtempSync(join(tmpdir(), 'slipway-res-cache-'));
  const rounds = 24;
  const tags: string[] = [];
  const deadline = performance.now() + 60_000;
  let killed = 0;
  const window: Record<string, number> = {};
  for (let i = 0; i < rounds && performance.now() < deadline; i++) {
    const tag = `r${i}`;
    tags.push(tag);
    // Every other round runs its RUN steps again (--no-cache): kills land mid-RUN and mid-push alike.
    const kind = i % 2 === 0 ? 'no-cache' : 'cached';
    const r = await build(['--cache-dir', cache, '--platform', 'linux/amd64,linux/arm64', '-t', `${reg.host}/crash/img:${tag}`, '--push', ...(kind === 'no-cache' ? ['--no-cache'] : []), ctx],
      { killAfterMs: Math.random() * (window[kind] ?? reference.ms) });
    if (r.signal === 'SIGKILL') killed++;
    else {
      assert.equal(r.code, 0, r.stderr);
      window[kind] = r.ms; // aim the next kill of this kind inside how long such a build takes
    }
    // A RUN step's runtime may outlive its killed parent for a moment; no round starts on top of it.
    await assertComplete(client, 'crash/img', [tag]);
  }
  const leftBehind = (await diskUsage(cache)).units.temp;
  const next = await build(['--cache-dir', cache, '--platform', 'linux/amd64,linux/arm64', '-t', `${reg.host}/crash/img:final`, '--push', ctx]);
  assert.equal(next.code, 0, next.stderr);
  const digest = next.stdout.trim().split('\n').at(-1);
  assert.equal(digest, reference.stdout.trim().split('\n').at(-1), 'same digest as an uninterrupted build');
  const complete = await assertComplete(client, 'crash/img', [...tags, 'final']);
  assert.deepEqual(mountsUnder(cache), [], 'no mounts left under the cache dir');
  assert.deepEqual(processesNaming(cache), [], 'no process left that works on the cache dir');
  const after = (await diskUsage(cache)).units.temp;
  t.diagnostic(`${tags.length} rounds, ${killed} killed mid-build, ${complete - 1} complete tags; temps left by kills: ${leftBehind.count} (${leftBehind.bytes} bytes), after the next build: ${after.count} (${after.bytes} bytes)`);
  assert.ok(tags.length >= 20, `only ${tags.length} rounds in the time bound`);
  assert.ok(killed >= 10, `only ${killed} rounds were killed mid-build`);
  await client.close();
});

test('four builds at once on one cache dir (two Dockerfiles, two each) give the digests serial builds give', { skip: runSkip }, async () => {
  const a = context({ Dockerfile: `FROM ${busybox}\nRUN echo a > /a && head -c 200000 /dev/zero > /z\nCOPY f.txt /f.txt\n`, 'f.txt': 'neighbour a\n' });
  const b = context({ Dockerfile: `FROM ${busybox}\nRUN echo b > /b\nCOPY f.txt /f.txt\nRUN cat /f.txt > /g\n`, 'f.txt': 'neighbour b\n' });
  const serial: string[] = [];
  for (const ctx of [a, b]) {
    const r = await build(['--cache-dir', mkdtempSync(join(tmpdir(), 'slipway-res-serial-')), '-o', `type=oci,dest=${join(ctx, 'serial.tar')}`, ctx]);
    assert.equal(r.code, 0, r.stderr);
    serial.push(r.stdout.trim());
  }
  const shared = mkdtempSync(join(tmpdir(), 'slipway-res-shared-'));
  for (let round = 0; round < 2; round++) {
    const runs = await Promise.all([a, b, a, b].map((ctx, i) => build(['--cache-dir', shared, '-o', `type=oci,dest=${join(ctx, `out-${round}-${i}.tar`)}`, ctx])));
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), serial[i % 2], `build ${i} of round ${round}`);
    });
  }
  assert.deepEqual(readdirSync(join(shared, 'tmp')).filter((n) => !n.startsWith('.')), [], 'no temps left once all four are done');
});

// Layer compression as buildx's outputs ask for it (compression=gzip|zstd|uncompressed,
// compression-level, force-compression): new layers in the asked compression, cached ones turned
// into it without running a step again (and once: the variant is recorded), base image layers
// kept unless forced, the layout and the pushed image read by the real tools (zstd, skopeo, umoci).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { buildContext, makeContext, run, runMissing, unpackOci } from './helpers.ts';

const missing = registryMissing() ?? fixturesMissing() ?? runMissing() ?? (existsSync('/usr/bin/zstd') ? undefined : 'zstd is not installed (Debian package zstd)');

const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const TAR = 'application/vnd.oci.image.layer.v1.tar';

interface Layer { mediaType: string; digest: string; size: number }
interface Image { manifestDigest: string; layers: Layer[]; diffIDs: string[]; blob: (digest: string) => Buffer }

const sha = (b: Uint8Array) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/** The one image of an OCI layout tar: its manifest's layers, the config's diffIDs and the blobs. */
async function readLayout(tarFile: string, dirs: string[]): Promise<Image> {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-zstd-layout-'));
  dirs.push(dir);
  await run('tar', ['-xf', tarFile, '-C', dir]);
  const blob = (d: string) => readFileSync(join(dir, 'blobs', ...d.split(':')));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifestDigest = index.manifests[0].digest;
  const manifest = JSON.parse(blob(manifestDigest).toString()) as { config: { digest: string }; layers: Layer[] };
  const config = JSON.parse(blob(manifest.config.digest).toString()) as { rootfs: { diff_ids: string[] } };
  return { manifestDigest, layers: manifest.layers, diffIDs: config.rootfs.diff_ids, blob };
}

function uncompressed(mediaType: string, bytes: Buffer): Buffer {
  return mediaType.endsWith('+zstd') ? zstdDecompressSync(bytes) : mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip') ? gunzipSync(bytes) : bytes;
}

/** Every layer's blob matches its descriptor and uncompresses to the config's diffID. */
function checkLayers(img: Image): void {
  assert.equal(img.layers.length, img.diffIDs.length);
  img.layers.forEach((l, i) => {
    const bytes = img.blob(l.digest);
    assert.equal(sha(bytes), l.digest);
    assert.equal(bytes.length, l.size);
    assert.equal(sha(uncompressed(l.mediaType, bytes)), img.diffIDs[i], `layer ${i} (${l.mediaType}) uncompresses to its diffID`);
  });
}

/** The image's layers unpacked in order by GNU tar (zstd through the zstd tool), into `dir`. */
async function untarLayers(img: Image, dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(rootfs);
  for (const l of img.layers) {
    const file = join(dir, l.digest.slice(7));
    writeFileSync(file, img.blob(l.digest));
    const flag = l.mediaType.endsWith('+zstd') ? ['--zstd'] : l.mediaType.endsWith('+gzip') ? ['-z'] : [];
    await run('tar', ['-x', ...flag, '-f', file, '-C', rootfs]);
  }
  return rootfs;
}

describe('layer compression', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;
  let baseLayers: number;
  const dirs: string[] = [];
  const temp = (prefix: string) => { const d = mkdtempSync(join(tmpdir(), prefix)); dirs.push(d); return d; };
  const dockerfile = (busy: string) => `FROM ${busy}\nRUN echo ran >> /ran.txt && head -c 300000 /dev/zero | tr '\\0' a > /made.txt\nCOPY app.txt /app/app.txt\n`;

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${busybox}`]);
    baseLayers = (JSON.parse(stdout) as { Layers: string[] }).Layers.length;
  });
  after(async () => {
    await reg?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('a stage no image holds writes its layers uncompressed (they never leave the cache dir); built as the target later, they are compressed without running its steps', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox} AS tool\nRUN head -c 300000 /dev/zero | tr '\\0' b > /tool.txt\nFROM ${busybox}\nCOPY --from=tool /tool.txt /tool.txt\n` });
    dirs.push(ctx);
    const cacheDir = temp('slipway-zstd-cache-');
    const blobs = () => readdirSync(join(cacheDir, 'blobs', 'sha256')).map((f) => readFileSync(join(cacheDir, 'blobs', 'sha256', f)));
    const first = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(ctx, 'final.tar')}`] });
    assert.equal(first.result.steps.run, 2);
    const final = await readLayout(join(ctx, 'final.tar'), dirs);
    checkLayers(final);
    assert.deepEqual(final.layers.map((l) => l.mediaType), Array(baseLayers + 1).fill(GZIP));
    // Two layers hold the 300,000-byte file: the tool stage's as a plain tar, the image's gzipped.
    const plain = blobs().filter((b) => b.length > 300_000 && b.toString('latin1', 257, 262) === 'ustar');
    assert.equal(plain.length, 1, 'the tool stage\'s RUN layer is an uncompressed tar in the cache dir');
    assert.ok(plain[0].includes('tool.txt'));

    const tool = await buildContext(ctx, { cacheDir, target: 'tool', outputs: [`type=oci,dest=${join(ctx, 'tool.tar')}`] });
    assert.deepEqual(tool.result.steps, { cached: 1, run: 0 }, 'its RUN is cached');
    assert.equal(tool.result.recompressed, 1, 'the uncompressed layer was compressed for the image');
    const img = await readLayout(join(ctx, 'tool.tar'), dirs);
    checkLayers(img);
    assert.deepEqual(img.layers.map((l) => l.mediaType), Array(baseLayers + 1).fill(GZIP));
  });

  test('compression=zstd: new layers are zstd (zstd -t accepts them, they uncompress to the diffIDs), base layers stay gzip; skopeo and GNU tar read the layout', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), 'app.txt': 'zstd app\n' });
    dirs.push(ctx);
    const out = join(ctx, 'out.tar');
    await buildContext(ctx, { cacheDir: temp('slipway-zstd-cache-'), outputs: [`type=oci,dest=${out},compression=zstd`] });
    const img = await readLayout(out, dirs);
    checkLayers(img);
    assert.deepEqual(img.layers.map((l) => l.mediaType), [...Array(baseLayers).fill(GZIP), ZSTD, ZSTD]);
    const work = temp('slipway-zstd-t-');
    for (const l of img.layers.filter((x) => x.mediaType === ZSTD)) {
      const file = join(work, l.digest.slice(7) + '.zst');
      writeFileSync(file, img.blob(l.digest));
      await run('zstd', ['-q', '-t', file]);
    }
    // skopeo reads the layout (checking every blob's digest); GNU tar unpacks the layers in order
    // (umoci 0.4.7 refuses zstd layers).
    const layout = temp('slipway-zstd-copied-');
    await run('skopeo', ['copy', '-q', `oci-archive:${out}`, `oci:${layout}:img`]);
    const rootfs = await untarLayers(img, temp('slipway-zstd-rootfs-'));
    assert.equal(readFileSync(join(rootfs, 'app', 'app.txt'), 'utf8'), 'zstd app\n');
    assert.equal(readFileSync(join(rootfs, 'ran.txt'), 'utf8'), 'ran\n');
  });

  test('gzip, then zstd: no step runs again, same diffIDs, other layer digests; zstd again recompresses nothing; with an epoch the cache history does not change the digest', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), 'app.txt': 'switch\n' });
    dirs.push(ctx);
    const cacheDir = temp('slipway-zstd-cache-');
    const first = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(ctx, 'gzip.tar')}`] });
    assert.equal(first.result.steps.run, 2);
    const gzip = await readLayout(join(ctx, 'gzip.tar'), dirs);
    assert.deepEqual(gzip.layers.map((l) => l.mediaType), Array(baseLayers + 2).fill(GZIP));

    const second = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(ctx, 'zstd.tar')},compression=zstd`] });
    assert.deepEqual(second.result.steps, { cached: 2, run: 0 }, 'no step ran again');
    assert.equal(second.log.filter((l) => l.startsWith('CACHED ')).length, 2, second.log.join('\n'));
    assert.equal(second.result.recompressed, 2, 'the two cached layers were compressed as zstd');
    const zstd = await readLayout(join(ctx, 'zstd.tar'), dirs);
    checkLayers(zstd);
    assert.deepEqual(zstd.diffIDs, gzip.diffIDs);
    assert.deepEqual(zstd.layers.map((l) => l.mediaType), [...Array(baseLayers).fill(GZIP), ZSTD, ZSTD]);
    for (let i = baseLayers; i < zstd.layers.length; i++) assert.notEqual(zstd.layers[i].digest, gzip.layers[i].digest);

    const third = await buildContext(ctx, { cacheDir, compression: 'zstd', outputs: [`type=oci,dest=${join(ctx, 'zstd2.tar')}`] });
    assert.deepEqual(third.result.steps, { cached: 2, run: 0 });
    assert.equal(third.result.recompressed, 0, 'the zstd variants were recorded');
    assert.equal(third.result.digest, second.result.digest);
    assert.equal((await readLayout(join(ctx, 'zstd2.tar'), dirs)).manifestDigest, zstd.manifestDigest);

    // Another level is another variant: gzip-1 of the cached gzip-6 layers, made once.
    const fast = await buildContext(ctx, { cacheDir, compressionLevel: '1', outputs: [`type=oci,dest=${join(ctx, 'gzip1.tar')}`] });
    assert.deepEqual([fast.result.steps.run, fast.result.recompressed], [0, 2]);
    const gzip1 = await readLayout(join(ctx, 'gzip1.tar'), dirs);
    checkLayers(gzip1);
    assert.deepEqual(gzip1.layers.map((l) => l.mediaType), Array(baseLayers + 2).fill(GZIP));
    for (let i = baseLayers; i < gzip1.layers.length; i++) assert.notEqual(gzip1.layers[i].digest, gzip.layers[i].digest);
    assert.equal((await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(ctx, 'gzip6.tar')}`] })).result.recompressed, 0, 'the default level is the cached layers\' own');

    // With SOURCE_DATE_EPOCH: the epoch variant comes out in zstd too, byte for byte what a fresh cache makes.
    const epoch = await buildContext(ctx, { cacheDir, compression: 'zstd', sourceDateEpoch: '1700000000', outputs: [`type=oci,dest=${join(ctx, 'epoch.tar')}`] });
    assert.equal(epoch.result.steps.run, 0);
    const fresh = await buildContext(ctx, { cacheDir: temp('slipway-zstd-cache-'), compression: 'zstd', sourceDateEpoch: '1700000000', outputs: [`type=oci,dest=${join(ctx, 'fresh.tar')}`] });
    assert.equal(fresh.result.steps.run, 2);
    assert.equal(fresh.result.recompressed, 0, 'a cache miss writes zstd at once');
    assert.equal(epoch.result.digest, fresh.result.digest, 'same inputs, same zstd image, whatever the cache held');
    const timed = await readLayout(join(ctx, 'epoch.tar'), dirs);
    checkLayers(timed);
    assert.deepEqual(timed.layers.slice(baseLayers).map((l) => l.mediaType), [ZSTD, ZSTD]);
  });

  test('compression=uncompressed: tar layers whose digest is the diffID', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), 'app.txt': 'plain\n' });
    dirs.push(ctx);
    const out = join(ctx, 'plain.tar');
    await buildContext(ctx, { cacheDir: temp('slipway-zstd-cache-'), outputs: [`type=oci,dest=${out},compression=uncompressed`] });
    const img = await readLayout(out, dirs);
    checkLayers(img);
    assert.deepEqual(img.layers.slice(baseLayers).map((l) => l.mediaType), [TAR, TAR]);
    for (let i = baseLayers; i < img.layers.length; i++) assert.equal(img.layers[i].digest, img.diffIDs[i]);
    const bundle = await unpackOci(out);
    dirs.push(join(bundle, '..'));
    assert.equal(readFileSync(join(bundle, 'rootfs', 'app', 'app.txt'), 'utf8'), 'plain\n');
  });

  test('type=registry,compression=zstd: the pushed manifest has zstd layers and gzip base layers; force-compression=true makes the base layers zstd too, once', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), 'app.txt': 'pushed\n' });
    dirs.push(ctx);
    const cacheDir = temp('slipway-zstd-cache-');
    const manifestOf = async (ref: string) => JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])).stdout) as { layers: Layer[] };
    const plain = `${reg.host}/app/zstd:1`;
    await buildContext(ctx, { cacheDir, tags: [plain], outputs: ['type=registry,compression=zstd'] });
    const pushed = await manifestOf(plain);
    assert.deepEqual(pushed.layers.map((l) => l.mediaType), [...Array(baseLayers).fill(GZIP), ZSTD, ZSTD]);

    const forced = `${reg.host}/app/zstd-forced:1`;
    const built = await buildContext(ctx, { cacheDir, tags: [forced], outputs: ['type=image,push=true,compression=zstd,force-compression=true'] });
    assert.equal(built.result.steps.run, 0);
    assert.equal(built.result.recompressed, baseLayers, 'the base layers were converted');
    const all = await manifestOf(forced);
    assert.deepEqual(all.layers.map((l) => l.mediaType), Array(baseLayers + 2).fill(ZSTD));
    assert.deepEqual(all.layers.slice(baseLayers), pushed.layers.slice(baseLayers), 'the step layers are the same blobs');
    for (let i = 0; i < baseLayers; i++) assert.notEqual(all.layers[i].digest, pushed.layers[i].digest);
    // Every blob is in the repository and matches its digest: skopeo copies the image out, GNU tar unpacks it.
    const layout = temp('slipway-zstd-pulled-');
    await run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${forced}`, `oci:${layout}:img`]);
    const blob = (d: string) => readFileSync(join(layout, 'blobs', ...d.split(':')));
    const rootfs = await untarLayers({ manifestDigest: '', layers: all.layers, diffIDs: [], blob }, temp('slipway-zstd-rootfs-'));
    assert.equal(readFileSync(join(rootfs, 'app', 'app.txt'), 'utf8'), 'pushed\n');
    assert.ok(existsSync(join(rootfs, 'bin', 'busybox')), 'the converted base layer unpacks');

    const again = await buildContext(ctx, { cacheDir, tags: [`${reg.host}/app/zstd-forced:2`], outputs: ['type=registry,compression=zstd,force-compression=true'] });
    assert.equal(again.result.recompressed, 0, 'the converted base layers were recorded');
    assert.equal(again.result.digest, built.result.digest);
  });

  test('errors before anything is built or written: estargz, a bad level, conflicting outputs, a docker archive of zstd, an unknown key', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), 'app.txt': 'x\n' });
    dirs.push(ctx);
    const cacheDir = temp('slipway-zstd-cache-');
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=estargz`], {}, /compression=estargz is not supported/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=zstd,compression-level=23`], {}, /zstd compression level 23 is out of range/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression-level=10`], {}, /gzip compression level 10 is out of range/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=zstd`, `type=oci,dest=${join(ctx, 'b.tar')},compression=gzip`], {}, /conflicting layer compressions: .*a\.tar asks for zstd, .*b\.tar for gzip/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=gzip`], { compression: 'zstd' }, /conflicting layer compressions: .* asks for gzip, --compression for zstd/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=zstd`, `type=docker,dest=${join(ctx, 'b.tar')}`], {}, /a docker archive .* cannot hold zstd layers/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compression=zstd,oci-mediatypes=false`], {}, /zstd layers have no Docker media type/],
      [[`type=oci,dest=${join(ctx, 'a.tar')},compresion=zstd`], {}, /unknown key "compresion" for type=oci/],
    ];
    for (const [outputs, extra, message] of cases) {
      await assert.rejects(buildContext(ctx, { cacheDir, outputs, ...extra }), message, outputs.join(' '));
    }
    assert.ok(!existsSync(join(ctx, 'a.tar')) && !existsSync(join(ctx, 'b.tar')), 'no output was written');
    assert.deepEqual(readdirSync(cacheDir), [], 'nothing ran: the cache dir is untouched');
  });
});

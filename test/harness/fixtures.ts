// Test fixture images, made with umoci + skopeo (not our code, so a bug in our writer cannot hide
// a bug in our reader): a multi-arch busybox (OCI index of linux/amd64 + linux/arm64), a Docker
// schema-2 single-arch image, an image with 22 layers, and images with big random blobs. Layouts are
// built once and cached under the temp dir (shared by test processes; finished layouts are renamed
// into place atomically), then pushed into a test registry with skopeo.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, symlinkSync, openSync, writeSync, closeSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { skopeoFlags, type TestRegistry } from './registry.ts';

const run = promisify(execFile);
/** Unpacked by scripts/dev from Debian's busybox-static:arm64 (it conflicts with the amd64 package). */
export const arm64Busybox = new URL('../../.tools/arm64/bin/busybox', import.meta.url).pathname;
const amd64Busybox = '/bin/busybox';
const cacheRoot = join(tmpdir(), 'slipway-fixtures-v1');

export type FixtureName = 'multiarch' | 'amd64' | 'arm64' | 'v2s2' | 'layers20' | 'big';

/** A reason fixture images cannot be made here, or undefined. */
export function fixturesMissing(): string | undefined {
  for (const tool of ['/usr/bin/umoci', '/usr/bin/skopeo']) if (!existsSync(tool)) return `${tool} not installed`;
  if (!existsSync(amd64Busybox)) return `${amd64Busybox} missing (Debian package busybox-static)`;
  if (!existsSync(arm64Busybox)) return `${arm64Busybox} missing (scripts/dev installs it)`;
  return undefined;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr || e.message}`, { cause: err });
  }
}

/** Builds `name` with `build(dir)` once; concurrent builders race and the first rename wins. */
async function cached(name: string, build: (dir: string) => Promise<void>): Promise<string> {
  const final = join(cacheRoot, name);
  if (existsSync(join(final, '.complete'))) return final;
  mkdirSync(cacheRoot, { recursive: true });
  const work = `${final}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work);
  try {
    await build(work);
    writeFileSync(join(work, '.complete'), '');
    try {
      renameSync(work, final);
    } catch {
      if (!existsSync(join(final, '.complete'))) throw new Error(`could not place fixture ${final}`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return final;
}

/** A deterministic uncompressed tar of `dir` (root-owned, mtime 0, sorted). */
async function tarDir(dir: string, out: string): Promise<void> {
  await sh('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', dir, '-cf', out, '.']);
}

async function addLayer(layout: string, tag: string, files: (root: string) => void, work: string): Promise<void> {
  const root = join(work, `layer-${randomBytes(4).toString('hex')}`);
  mkdirSync(root, { recursive: true });
  files(root);
  const tar = root + '.tar';
  await tarDir(root, tar);
  await sh('umoci', ['raw', 'add-layer', '--image', `${layout}:${tag}`, '--history.created_by', `layer of ${tag}`, tar]);
  rmSync(root, { recursive: true, force: true });
  rmSync(tar, { force: true });
}

function busyboxRoot(binary: string): (root: string) => void {
  return (root) => {
    mkdirSync(join(root, 'bin'));
    writeFileSync(join(root, 'bin/busybox'), readFileSync(binary), { mode: 0o755 });
    for (const tool of ['sh', 'ls', 'cat', 'echo', 'uname']) symlinkSync('busybox', join(root, 'bin', tool));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc/hostname'), 'slipway-fixture\n');
  };
}

/** Random, incompressible file contents (gzip cannot shrink them, like real compressed payloads). */
function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0;) {
      const buf = randomBytes(Math.min(1 << 20, left));
      writeSync(fd, buf);
      left -= buf.length;
    }
  } finally {
    closeSync(fd);
  }
}

interface IndexJson { manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }> }

function readLayoutIndex(layout: string): IndexJson {
  return JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as IndexJson;
}

/** The busybox layout: tags amd64, arm64, multi (an OCI index of both) and layers20. */
async function busyboxLayout(): Promise<string> {
  return cached('busybox', async (dir) => {
    const layout = join(dir, 'layout');
    await sh('umoci', ['init', '--layout', layout]);
    for (const [arch, binary] of [['amd64', amd64Busybox], ['arm64', arm64Busybox]] as const) {
      await sh('umoci', ['new', '--image', `${layout}:${arch}`]);
      await addLayer(layout, arch, busyboxRoot(binary), dir);
      await sh('umoci', ['config', '--image', `${layout}:${arch}`, '--os', 'linux', '--architecture', arch,
        '--config.cmd', '/bin/sh', '--config.env', 'PATH=/bin', '--config.label', `fixture=busybox-${arch}`]);
    }
    // umoci has no index writer: assemble the two tagged manifests into an OCI index blob ourselves.
    const idx = readLayoutIndex(layout);
    const byTag = (tag: string) => idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: (['amd64', 'arm64'] as const).map((arch) => ({
        mediaType: byTag(arch).mediaType, digest: byTag(arch).digest, size: byTag(arch).size,
        platform: { architecture: arch, os: 'linux', ...(arch === 'arm64' ? { variant: 'v8' } : {}) },
      })),
    };
    const bytes = Buffer.from(JSON.stringify(index, null, 2));
    const hex = createHash('sha256').update(bytes).digest('hex');
    writeFileSync(join(layout, 'blobs/sha256', hex), bytes);
    idx.manifests.push({ mediaType: index.mediaType, digest: `sha256:${hex}`, size: bytes.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } });
    writeFileSync(join(layout, 'index.json'), JSON.stringify(idx));

    await sh('umoci', ['new', '--image', `${layout}:layers20`]);
    await addLayer(layout, 'layers20', busyboxRoot(amd64Busybox), dir);
    for (let i = 1; i <= 21; i++) {
      await addLayer(layout, 'layers20', (root) => {
        mkdirSync(join(root, 'data'));
        writeFileSync(join(root, 'data', `file-${i}`), randomBytes(2048 + i * 512));
      }, dir);
    }
    await sh('umoci', ['config', '--image', `${layout}:layers20`, '--os', 'linux', '--architecture', 'amd64', '--config.cmd', '/bin/sh']);
  }).then((d) => join(d, 'layout'));
}

/**
 * A layout (tag `image`) with one layer per entry of `layerSizes` (bytes of random data each) on
 * top of busybox. Cached by name.
 */
export async function randomLayersLayout(name: string, layerSizes: number[]): Promise<string> {
  return cached(name, async (dir) => {
    const layout = join(dir, 'layout');
    await sh('umoci', ['init', '--layout', layout]);
    await sh('umoci', ['new', '--image', `${layout}:image`]);
    await addLayer(layout, 'image', busyboxRoot(amd64Busybox), dir);
    let n = 0;
    for (const size of layerSizes) {
      const i = n++;
      await addLayer(layout, 'image', (root) => writeRandomFile(join(root, `random-${i}.bin`), size), dir);
    }
    await sh('umoci', ['config', '--image', `${layout}:image`, '--os', 'linux', '--architecture', 'amd64', '--config.cmd', '/bin/sh']);
  }).then((d) => join(d, 'layout'));
}

export interface PushedFixture {
  /** `HOST/REPO:TAG` */
  ref: string;
  /** Digest of the top manifest (or index) as pushed. */
  digest: string;
}

/** Copies an OCI layout tag into a test registry with skopeo. */
export async function pushLayout(reg: TestRegistry, layoutRef: string, dest: string, extra: string[] = []): Promise<PushedFixture> {
  const digestFile = join(tmpdir(), `slipway-digest-${process.pid}-${randomBytes(4).toString('hex')}`);
  const ref = `${reg.host}/${dest}`;
  await sh('skopeo', ['copy', '--insecure-policy', '--retry-times', '2', ...skopeoFlags(reg, 'dest'), '--digestfile', digestFile, ...extra, `oci:${layoutRef}`, `docker://${ref}`]);
  const digest = readFileSync(digestFile, 'utf8').trim();
  rmSync(digestFile, { force: true });
  return { ref, digest };
}

/**
 * Pushes a fixture image into `reg` as `repo:tag` (defaults: `fixtures/NAME:latest`).
 * `big` holds one 200 MiB incompressible layer (cached on disk after the first build).
 */
export async function pushFixture(reg: TestRegistry, name: FixtureName, repoTag?: string): Promise<PushedFixture> {
  const dest = repoTag ?? `fixtures/${name}:latest`;
  switch (name) {
    case 'multiarch': return pushLayout(reg, `${await busyboxLayout()}:multi`, dest, ['--all']);
    case 'amd64': return pushLayout(reg, `${await busyboxLayout()}:amd64`, dest);
    case 'arm64': return pushLayout(reg, `${await busyboxLayout()}:arm64`, dest);
    case 'v2s2': return pushLayout(reg, `${await busyboxLayout()}:amd64`, dest, ['--format', 'v2s2']);
    case 'layers20': return pushLayout(reg, `${await busyboxLayout()}:layers20`, dest);
    case 'big': return pushLayout(reg, `${await randomLayersLayout('big200', [200 << 20])}:image`, dest);
  }
}

/** Raw manifest bytes as skopeo sees them (the independent check of what we pushed). */
export async function skopeoRawManifest(reg: TestRegistry, ref: string): Promise<Buffer> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', ...skopeoFlags(reg), `docker://${ref}`], { encoding: 'buffer', maxBuffer: 16 << 20 });
  return stdout;
}

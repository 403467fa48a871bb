// `slipway build --compression zstd` as a process: the same zstd layer on one core as on every
// core (the compressed bytes depend on the input alone), and one clear error for a bad value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot, runCliProcess } from '../harness/cli.ts';

const exec = promisify(execFile);
const cli = join(projectRoot, 'src/cli/main.ts');

/** 16 MiB of text-like bytes (several 4 MiB chunks, so several compress at once where cores allow). */
function bigText(): Buffer {
  const words = ['layer', 'zstd', 'chunk', 'tar', 'slipway', 'digest', 'frame', 'cache', 'image', 'build'];
  const out = Buffer.alloc(16 << 20);
  let seed = 12345;
  for (let at = 0; at < out.length;) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    at += out.write(words[seed % words.length] + (seed & 0x100 ? '\n' : ' '), at);
  }
  return out;
}

function context(): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cli-zstd-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY big.txt /big.txt\n');
  writeFileSync(join(dir, 'big.txt'), bigText());
  return dir;
}

/** The zstd layer's descriptor of the image slipway wrote, built with `cpus` (taskset) or every core. */
async function buildOn(dir: string, cpus: string | undefined): Promise<{ digest: string; layer: { mediaType: string; digest: string } }> {
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-cli-zstd-out-')), 'img');
  const args = [cli, 'build', '--cache-dir', mkdtempSync(join(tmpdir(), 'slipway-cli-zstd-cache-')), '--compression', 'zstd', '--progress', 'quiet', '-o', `type=oci,dest=${out},tar=false`, dir];
  const env = { ...process.env, SOURCE_DATE_EPOCH: '0' };
  const { stdout } = cpus ? await exec('taskset', ['-c', cpus, process.execPath, ...args], { env }) : await exec(process.execPath, args, { env });
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(readFileSync(join(out, 'blobs', ...index.manifests[0].digest.split(':')), 'utf8')) as { layers: Array<{ mediaType: string; digest: string }> };
  return { digest: stdout.trim(), layer: manifest.layers[0] };
}

test('--compression zstd: the same layer digest on one core as on every core', { skip: (availableParallelism() < 2 || !existsSync('/usr/bin/taskset')) && 'needs 2 cores and taskset' }, async () => {
  const { stdout } = await exec('taskset', ['-c', '0', process.execPath, '-p', 'require("node:os").availableParallelism()']);
  assert.equal(stdout.trim(), '1', 'taskset leaves slipway one core: one compressor at a time');
  const dir = context();
  const one = await buildOn(dir, '0');
  const all = await buildOn(dir, undefined);
  assert.equal(one.layer.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  assert.equal(one.layer.digest, all.layer.digest);
  assert.equal(one.digest, all.digest);
});

test('--compression and --compression-level: one clear error each for a bad value or a disagreement', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cli-zstd-bad-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  const out = join(dir, 'out.tar');
  const cases: Array<[string[], RegExp]> = [
    [['--compression', 'estargz'], /--compression estargz is not supported/],
    [['--compression', 'brotli'], /invalid --compression "brotli"/],
    [['--compression', 'zstd', '--compression-level', 'max'], /compression level "max" is not a whole number/],
    [['--compression', 'zstd', '--compression-level', '0'], /zstd compression level 0 is out of range\n\s+hint: zstd takes a level from 1 to 22/],
    [['--compression', 'uncompressed', '--compression-level', '3'], /compression-level 3 has no meaning for uncompressed layers/],
    [['--compression-level', '5', '-o', `type=oci,dest=${out},compression-level=6`], /conflicting compression levels/],
  ];
  for (const [flags, message] of cases) {
    const r = await runCliProcess(['build', ...flags, ...(flags.includes('-o') ? [] : ['-o', `type=oci,dest=${out}`]), dir]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, message);
    assert.ok(!existsSync(out), 'nothing was written');
  }
});

// `slipway build` publishing flags as scripts use them: --iidfile, -q/--quiet, --progress rawjson,
// the metadata file's containerimage.descriptor and buildx.build.provenance, the no-output warning.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { runCliProcess } from '../harness/cli.ts';


async function slipway(args: string[], cwd: string) {
  return runCliProcess(args, { cwd, env: { SOURCE_DATE_EPOCH: '0' } });
}

function context(): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cli-pub-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
  writeFileSync(join(dir, 'a.txt'), 'a');
  return dir;
}

describe('slipway build: publishing flags', { skip: registryMissing() }, () => {
  let reg: TestRegistry;
  before(async () => { reg = await startRegistry(); });
  after(async () => reg?.stop());

  test('-q prints only the digest on stdout; --iidfile holds the image id; the metadata file has containerimage.descriptor and buildx.build.provenance', async () => {
    const dir = context();
    const cache = mkdtempSync(join(tmpdir(), 'slipway-cli-cache-'));
    const r = await slipway(['build', '-q', '--cache-dir', cache, '-t', `${reg.host}/cli/app:1`, '--push', '--provenance', 'mode=min', '--iidfile', 'iid', '--metadata-file', 'meta.json', '.'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
    const digest = r.stdout.trim();
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    assert.equal(meta['containerimage.digest'], digest);
    assert.deepEqual(Object.keys(meta['containerimage.descriptor']), ['mediaType', 'digest', 'size']);
    assert.equal(meta['containerimage.descriptor'].digest, digest);
    assert.equal(meta['containerimage.descriptor'].mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.ok(meta['containerimage.descriptor'].size > 0);
    assert.equal(meta['buildx.build.provenance'].buildDefinition.externalParameters.request.frontend, 'dockerfile.v0');
    assert.equal(readFileSync(join(dir, 'iid'), 'utf8'), meta['containerimage.config.digest']);
  });

  test('--progress rawjson: one JSON object per line on stderr, steps numbered, each ending in done or cached', async () => {
    const dir = context();
    const cache = mkdtempSync(join(tmpdir(), 'slipway-cli-cache-'));
    const r = await slipway(['build', '--progress', 'rawjson', '--cache-dir', cache, '-o', 'type=oci,dest=out.tar', '.'], dir);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; step?: number; time: string; title?: string });
    assert.ok(events.every((e) => typeof e.type === 'string' && !Number.isNaN(Date.parse(e.time))));
    const started = events.filter((e) => e.type === 'step');
    assert.ok(started.length >= 2);
    for (const s of started) assert.ok(events.some((e) => e.step === s.step && (e.type === 'done' || e.type === 'cached')), `step ${s.step} ${s.title}`);
    assert.equal(r.stdout, '');
  });

  test('tags with no output: one warning line that the result stays in the cache; a bad tag fails before the build', async () => {
    const dir = context();
    const cache = mkdtempSync(join(tmpdir(), 'slipway-cli-cache-'));
    const r = await slipway(['build', '--cache-dir', cache, '-t', 'app:1', '.'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => /^WARNING: no output specified/.test(l)).length, 1);
    const bad = await slipway(['build', '--cache-dir', cache, '-t', 'app:1', '-t', 'Bad Tag!', '.'], dir);
    assert.equal(bad.code, 1);
    assert.doesNotMatch(bad.stderr, /#\d+ /);
    assert.match(bad.stderr, /^error: .*Bad Tag!/m);
  });
});

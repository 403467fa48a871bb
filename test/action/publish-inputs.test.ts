// The action's publishing inputs: load, annotations (metadata-action's lines), provenance with
// build-push-action's default (max for a public repository, min otherwise, none without a push),
// sbom, the builder id, and the job summary's attestation line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settingsFromInputs } from '../../src/action/inputs.ts';
import { summaryMarkdown } from '../../src/action/summary.ts';
import type { BuildResult } from '../../src/engine/index.ts';

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'slipway-action-pub-'));
  writeFileSync(join(ws, 'Dockerfile'), 'FROM scratch\n');
  return ws;
}

function event(isPrivate: boolean | undefined): string {
  const file = join(mkdtempSync(join(tmpdir(), 'slipway-event-')), 'event.json');
  writeFileSync(file, JSON.stringify({ repository: isPrivate === undefined ? {} : { private: isPrivate } }));
  return file;
}

test('provenance defaults as build-push-action: mode=max public, mode=min private or unknown, none without a push or when turned off', () => {
  const ws = workspace();
  const env = (p: boolean | undefined) => ({ GITHUB_EVENT_PATH: event(p), GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '42', GITHUB_SERVER_URL: 'https://github.com' });
  const settings = (inputs: Record<string, string>, e: Record<string, string>) => settingsFromInputs((n) => inputs[n] ?? '', e, ws).request;
  const push = { push: 'true', tags: '127.0.0.1:5000/o/r:1' };
  assert.deepEqual(settings(push, env(false)).attest, { sbom: false, provenance: { mode: 'max' }, builderId: 'https://github.com/o/r/actions/runs/42' });
  assert.deepEqual(settings(push, env(true)).attest?.provenance, { mode: 'min' });
  assert.deepEqual(settings(push, env(undefined)).attest?.provenance, { mode: 'min' });
  assert.equal(settings({ load: 'true', tags: 'app:1' }, env(false)).attest, undefined);
  assert.equal(settings({ ...push, provenance: 'false' }, env(false)).attest, undefined);
  assert.deepEqual(settings({ ...push, provenance: 'mode=min', sbom: 'true' }, env(false)).attest?.provenance, { mode: 'min' });
  assert.equal(settings({ ...push, sbom: 'true' }, env(true)).attest?.sbom, true);
});

test('load and annotations inputs: metadata-action lines, one per line', () => {
  const ws = workspace();
  const r = settingsFromInputs((n) => ({
    load: 'true', tags: 'app:1',
    annotations: 'manifest:org.opencontainers.image.title=app, with a comma\nindex:org.opencontainers.image.version=1.0\n',
  } as Record<string, string>)[n] ?? '', {}, ws).request;
  assert.equal(r.load, true);
  assert.deepEqual(r.annotations, [
    { level: 'manifest', key: 'org.opencontainers.image.title', value: 'app, with a comma' },
    { level: 'index', key: 'org.opencontainers.image.version', value: '1.0' },
  ]);
  assert.throws(() => settingsFromInputs((n) => (n === 'load' ? 'yes' : ''), {}, ws), /input "load" is "yes": expected true or false/);
});

test('the job summary lists the attestations made and how the registry lists them', () => {
  const result: BuildResult = {
    digest: 'sha256:' + 'a'.repeat(64), imageId: 'sha256:' + 'b'.repeat(64), images: [], tags: [], pushed: ['r/app:1'], written: [], steps: { cached: 0, run: 1 }, warnings: [],
    attestations: { provenance: 2, sbom: 2, referrers: ['tag-schema'] }, loaded: ['app:1'],
  };
  const md = summaryMarkdown({ result, seconds: 1 });
  assert.match(md, /\*\*Attestations:\*\* 2 SLSA provenance, 2 SPDX SBOM \(OCI referrers of each platform manifest, listed by the referrers tag schema\)/);
  assert.match(md, /\*\*Loaded into Docker:\*\*\n\n- `app:1`/);
});

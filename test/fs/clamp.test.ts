// A layer cached without SOURCE_DATE_EPOCH, re-timed for an epoch, is byte for byte the layer
// written with that epoch: same diffID, same digest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clampLayer, writeLayer, type LayerEntry } from '../../src/fs/index.ts';

const base = { uid: 0, gid: 0 };
const entries: LayerEntry[] = [
  { ...base, path: 'app', type: 'dir', mode: 0o755, mtime: 2_000_000_000 },
  { ...base, path: 'app/old.txt', type: 'file', mode: 0o644, mtime: 1_000, content: { buffer: Buffer.from('old') }, size: 3 },
  { ...base, path: 'app/new.txt', type: 'file', mode: 0o600, mtime: 1_800_000_000, content: { buffer: Buffer.alloc(70_000, 7) }, size: 70_000 },
  { ...base, path: 'app/' + 'long-name-'.repeat(20) + 'x', type: 'file', mode: 0o644, mtime: 1_900_000_000, content: { buffer: Buffer.from('pax path') }, size: 8 },
  { path: 'app/bigid', type: 'file', mode: 0o755, uid: 5_000_000, gid: 5_000_000, mtime: 1_700_000_001, content: { buffer: Buffer.from('x') }, size: 1, xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 32, 0, 0]) } },
  { ...base, path: 'implied/parent/file', type: 'file', mode: 0o644, mtime: 1_900_000_000, content: { buffer: Buffer.from('p') }, size: 1 },
  { ...base, path: 'app/link', type: 'symlink', mode: 0o777, mtime: 1_900_000_000, linkTarget: 'new.txt' },
  { ...base, path: 'app/hard', type: 'hardlink', mode: 0o600, mtime: 1_900_000_000, linkTarget: 'app/new.txt' },
];

test('clampLayer(unclamped, E) equals writeLayer(entries, E) byte for byte', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-clamp-'));
  for (const compression of ['gzip', 'zstd'] as const) {
    const raw = await writeLayer(entries, { dir, compression });
    for (const epoch of [0, 1_700_000_000, 2_100_000_000]) {
      const direct = await writeLayer(entries, { dir, compression, sourceDateEpoch: epoch });
      const retimed = await clampLayer(raw.path, epoch, { dir, compression });
      assert.equal(retimed.diffID, direct.diffID, `${compression} epoch ${epoch}: diffID`);
      assert.equal(retimed.digest, direct.digest, `${compression} epoch ${epoch}: digest`);
    }
  }
});

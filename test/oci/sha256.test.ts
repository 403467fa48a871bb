// The JavaScript SHA-256 of small inputs against node:crypto (OpenSSL), for every length around
// the block and padding edges, for random inputs split at random points, and across the switch to
// node:crypto.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { sha256Hasher, sha256Hex } from '../../src/oci/index.ts';

const openssl = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

test('sha256Hex: the FIPS 180-2 examples, and each length from 0 to 300 bytes (every padding case)', () => {
  assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
  const bytes = randomBytes(300);
  for (let n = 0; n <= 300; n++) assert.equal(sha256Hex(bytes.subarray(0, n)), openssl(bytes.subarray(0, n)), `${n} bytes`);
  assert.equal(sha256Hex('unicode ✓ é'), openssl('unicode ✓ é'), 'strings are hashed as UTF-8');
});

test('sha256Hasher: any split of any input gives node:crypto\'s digest, below and above the switch to it', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 200_000 }), fc.array(fc.nat(), { maxLength: 6 }), fc.nat(), (length, cuts, seed) => {
    const data = Buffer.alloc(length);
    for (let i = 0, x = seed | 1; i < length; i++) { x = (x * 1103515245 + 12345) >>> 0; data[i] = x >>> 24; }
    const at = [...new Set(cuts.map((c) => (length ? c % length : 0)))].sort((a, b) => a - b);
    const h = sha256Hasher();
    let from = 0;
    for (const c of [...at, length]) { h.update(data.subarray(from, c)); from = c; }
    assert.equal(h.digest(), openssl(data));
  }), { numRuns: 60 });
});

test('sha256Hasher keeps what it was given: a buffer reused after update does not change the digest', () => {
  const buf = Buffer.from('first piece');
  const h = sha256Hasher().update(buf);
  buf.fill(0);
  assert.equal(h.update('second').digest(), openssl('first piecesecond'));
});

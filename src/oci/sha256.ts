// SHA-256 (FIPS 180-4) of small inputs in JavaScript, larger ones through node:crypto. A fully
// cached build hashes only small things (cache keys, a stored manifest, the list of a COPY's files:
// some 30 KB in all), and loading node:crypto costs 7-8 ms of such a build's 0.1-0.2 s: the bundle
// loads it on first use (scripts/build.mjs), and these hashers only use it past `nativeFrom` bytes.
// The digest is the same either way; only the time differs.
import { createHash, type Hash } from 'node:crypto';

/** Bytes from which a hasher hands its input to node:crypto (a cold JS hash does ~10 KB/ms). */
const nativeFrom = 64 << 10;

const roundConstants = new Int32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const initialState = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** Runs the compression function over the 64-byte blocks of `bytes` (its length a multiple of 64). */
function compress(state: Int32Array, schedule: Int32Array, bytes: Uint8Array): void {
  for (let at = 0; at < bytes.length; at += 64) {
    for (let i = 0; i < 16; i++) {
      const o = at + 4 * i;
      schedule[i] = (bytes[o] << 24) | (bytes[o + 1] << 16) | (bytes[o + 2] << 8) | bytes[o + 3];
    }
    for (let i = 16; i < 64; i++) {
      const a = schedule[i - 15], b = schedule[i - 2];
      const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
      const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
      schedule[i] = (schedule[i - 16] + s0 + schedule[i - 7] + s1) | 0;
    }
    let a = state[0], b = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6], h = state[7];
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + roundConstants[i] + schedule[i]) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    state[0] = (state[0] + a) | 0; state[1] = (state[1] + b) | 0; state[2] = (state[2] + c) | 0; state[3] = (state[3] + d) | 0;
    state[4] = (state[4] + e) | 0; state[5] = (state[5] + f) | 0; state[6] = (state[6] + g) | 0; state[7] = (state[7] + h) | 0;
  }
}

/** The hex SHA-256 of `bytes`, in JavaScript. */
function jsHex(bytes: Uint8Array): string {
  const state = Int32Array.from(initialState);
  const schedule = new Int32Array(64);
  const whole = bytes.length - (bytes.length % 64);
  compress(state, schedule, bytes.subarray(0, whole));
  // The padding: 0x80, zeros, and the length in bits as a big-endian 64-bit number.
  const rest = bytes.length - whole;
  const tail = new Uint8Array(rest < 56 ? 64 : 128);
  tail.set(bytes.subarray(whole));
  tail[rest] = 0x80;
  const view = new DataView(tail.buffer);
  view.setUint32(tail.length - 8, Math.floor(bytes.length / 0x20000000));
  view.setUint32(tail.length - 4, (bytes.length * 8) >>> 0);
  compress(state, schedule, tail);
  let hex = '';
  for (const word of state) hex += (word >>> 0).toString(16).padStart(8, '0');
  return hex;
}

export interface Sha256 {
  update(data: string | Uint8Array): Sha256;
  /** The hex digest; the hasher is spent. */
  digest(): string;
}

/** An incremental SHA-256: JavaScript while its input is small, node:crypto once it is not. */
export function sha256Hasher(): Sha256 {
  let pieces: Uint8Array[] = [];
  let size = 0;
  let native: Hash | undefined;
  const hasher: Sha256 = {
    update(data) {
      if (native) {
        native.update(data);
        return hasher;
      }
      // Kept until the digest: a copy (not Buffer's slice, a view), as the caller may reuse its buffer.
      const bytes = typeof data === 'string' ? Buffer.from(data) : new Uint8Array(data);
      if (size + bytes.length > nativeFrom) {
        native = createHash('sha256');
        for (const p of pieces) native.update(p);
        native.update(bytes);
        pieces = [];
      } else {
        pieces.push(bytes);
        size += bytes.length;
      }
      return hasher;
    },
    digest: () => native?.digest('hex') ?? jsHex(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces)),
  };
  return hasher;
}

/** The hex SHA-256 of `data`. */
export function sha256Hex(data: string | Uint8Array): string {
  return sha256Hasher().update(data).digest();
}

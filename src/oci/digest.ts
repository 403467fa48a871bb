// Digests as the OCI spec writes them: `algorithm:hex`. We produce sha256 and verify sha256/sha512.
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { sha256Hex } from './sha256.ts';

const digestPattern = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function isDigest(s: string): boolean {
  return digestPattern.test(s);
}

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + sha256Hex(data);
}

/** `algorithm:hex` of `bytes` (sha256 as `sha256` takes it; another algorithm through node:crypto). */
export function digestOf(algorithm: string, bytes: Uint8Array): string {
  return algorithm === 'sha256' ? sha256(bytes) : `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

/** A hash that matches the algorithm of `digest`, for verifying content as it streams. */
export function hasherFor(digest: string): { update(b: Uint8Array): void; digest(): string } {
  if (!isDigest(digest)) throw new Error(`invalid digest "${digest}": expected sha256:<64 hex> or sha512:<128 hex>`);
  const algorithm = digest.slice(0, digest.indexOf(':'));
  const h = createHash(algorithm);
  return {
    update: (b) => void h.update(b),
    digest: () => `${algorithm}:${h.digest('hex')}`,
  };
}

/** Canonical JSON bytes for a document we write (stable key order as given, no spaces). */
export function jsonBytes(doc: unknown): Buffer {
  return Buffer.from(JSON.stringify(doc));
}

/**
 * A pass-through stream that takes the sha256 digest and size of what flows through it, readable
 * from `result()` once it has ended; `check`, when given, may fail the stream at its end.
 */
export function digestMeter(check?: (r: { digest: string; size: number }) => Error | undefined): { stream: Transform; result: () => { digest: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  let digest: string | undefined;
  const result = () => ({ digest: (digest ??= 'sha256:' + hash.digest('hex')), size });
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done) {
      done(check?.(result()));
    },
  });
  return { stream, result };
}


// Cache keys: sha256 over a canonical JSON of the key parts (object keys sorted, no whitespace), so
// the same step gives the same key on any machine and in any process.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, sha256Hex, type Descriptor } from '../oci/index.ts';
import { isNotFound, readdirOrEmpty } from './store.ts';

/** Canonical JSON: keys sorted by code unit, `undefined` members dropped, arrays kept in order. */
export function canonicalJson(value: unknown): string {
  return encode(value, '$');
}

function encode(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`cache key part ${where} is ${value}: only finite numbers can be hashed`);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v, i) => (v === undefined ? 'null' : encode(v, `${where}[${i}]`))).join(',') + ']';
      if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`cache key part ${where} is a ${proto?.constructor?.name ?? 'non-plain object'}: use plain objects, arrays and scalars`);
      }
      const obj = value as Record<string, unknown>;
      const members = Object.keys(obj).sort().filter((k) => obj[k] !== undefined)
        .map((k) => JSON.stringify(k) + ':' + encode(obj[k], `${where}.${k}`));
      return '{' + members.join(',') + '}';
    }
    default:
      throw new TypeError(`cache key part ${where} has type ${typeof value}: it cannot be hashed`);
  }
}

/** The key of a step: 64 hex digits of sha256(canonical JSON of `parts`). */
export function cacheKey(parts: unknown): string {
  return sha256Hex(canonicalJson(parts));
}

/** True for a string `cacheKey` can have produced (guards file names built from keys). */
export function isCacheKey(s: string): boolean {
  return /^[a-f0-9]{64}$/.test(s);
}

/** What a cached step produced (its layer), or how a base image reference resolved. */
export interface CacheRecord {
  layer?: Descriptor & { diffID: string };
  /**
   * A base image: what the reference pointed at (`top`, an index or the manifest) and the chosen
   * platform's manifest and config, whose bytes are blobs in the store; `repository` served them.
   */
  base?: { top: string; manifest: Descriptor; config: Descriptor; repository: string };
  /** When the step first ran (its history `created`), so a cached rebuild gives the same image. */
  created?: string;
  /** The level the layer's blob was compressed at; absent: its compression's default (gzip 6, zstd 3). */
  level?: number;
}

/**
 * key → record, one small JSON file per key in `keys/<hex>.json`, written via temp + rename. A file
 * that does not parse is a miss and is removed.
 */
export class CacheIndex {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  private file(key: string): string {
    if (!isCacheKey(key)) throw new Error(`invalid cache key "${key}": expected 64 hex digits from cacheKey()`);
    return join(this.root, 'keys', `${key}.json`);
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    const file = this.file(key);
    let text: string;
    try {
      text = readFileSync(file, 'utf8'); // small, and a cached build reads one per step in a row
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      const rec = JSON.parse(text) as unknown;
      if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) throw new Error('not an object');
      const layer = (rec as CacheRecord).layer;
      if (layer !== undefined && (!isDigest(layer.digest) || !isDigest(layer.diffID) || typeof layer.size !== 'number')) throw new Error('bad layer');
      return rec as CacheRecord;
    } catch {
      await rm(file, { force: true });
      return undefined;
    }
  }

  async set(key: string, record: CacheRecord): Promise<void> {
    const file = this.file(key);
    const tmpDir = join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    await mkdir(join(this.root, 'keys'), { recursive: true });
    const tmp = join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}.json`);
    await writeFile(tmp, JSON.stringify(record), { flag: 'wx' });
    try {
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  async keys(): Promise<string[]> {
    return (await readdirOrEmpty(join(this.root, 'keys')))
      .filter((n) => n.endsWith('.json') && isCacheKey(n.slice(0, -5)))
      .map((n) => n.slice(0, -5));
  }
}

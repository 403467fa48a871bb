// rpm's package database in its sqlite form (rpm >= 4.16: `var/lib/rpm/rpmdb.sqlite`, or
// `usr/lib/sysimage/rpm/rpmdb.sqlite`), read with Node's own sqlite (node:sqlite). Each row of its Packages table
// is an rpm header: a count of index entries and the data size (big-endian u32 each), the 16-byte
// entries (tag, type, offset, count) and the data they point into. The BerkeleyDB (`Packages`) and
// ndb (`Packages.db`) forms of older and SUSE systems are not read.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FoundPackage } from './found.ts';

export const rpmDatabases = ['var/lib/rpm/rpmdb.sqlite', 'usr/lib/sysimage/rpm/rpmdb.sqlite'];

const tag = { name: 1000, version: 1001, release: 1002, epoch: 1003, vendor: 1011, license: 1014, arch: 1022, dirIndexes: 1116, baseNames: 1117, dirNames: 1118 };
type Value = string[] | number[];

/** The entries of one header blob whose types are strings or integers. */
export function rpmHeader(blob: Buffer): Map<number, Value> {
  const out = new Map<number, Value>();
  if (blob.length < 8) return out;
  const il = blob.readUInt32BE(0);
  const dl = blob.readUInt32BE(4);
  const store = 8 + il * 16;
  if (store + dl > blob.length) return out;
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const [t, type, off, count] = [blob.readUInt32BE(e), blob.readUInt32BE(e + 4), blob.readInt32BE(e + 8), blob.readUInt32BE(e + 12)];
    if (off < 0 || off >= dl) continue;
    const at = store + off;
    if (type === 6 || type === 8 || type === 9) { // STRING, STRING_ARRAY, I18NSTRING (its first)
      const strings: string[] = [];
      let p = at;
      for (let n = 0; n < (type === 8 ? count : 1); n++) {
        const end = blob.indexOf(0, p);
        if (end === -1 || end > store + dl) break;
        strings.push(blob.toString('utf8', p, end));
        p = end + 1;
      }
      out.set(t, strings);
    } else if (type === 4 && at + count * 4 <= store + dl) { // INT32
      out.set(t, Array.from({ length: count }, (_, n) => blob.readInt32BE(at + n * 4)));
    }
  }
  return out;
}

/** The header blobs of a database file's bytes (and its write-ahead log's, when there is one). */
function blobs(db: Buffer, wal?: Buffer): Buffer[] {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-rpmdb-'));
  try {
    writeFileSync(join(dir, 'rpmdb.sqlite'), db);
    if (wal?.length) writeFileSync(join(dir, 'rpmdb.sqlite-wal'), wal);
    // Loaded only here: an image without an rpm database never touches sqlite (nor its warnings).
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
    const sql = new DatabaseSync(join(dir, 'rpmdb.sqlite'));
    try {
      return (sql.prepare('SELECT blob FROM Packages ORDER BY hnum').all() as Array<{ blob: Uint8Array }>).map((r) => Buffer.from(r.blob));
    } finally {
      sql.close();
    }
  } catch {
    return []; // not an rpm sqlite database
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const enc = (s: string) => encodeURIComponent(s);

/** The installed packages (with their files) an rpm sqlite database lists; gpg-pubkey entries are keys, not packages. */
export function rpmPackages(db: Buffer, source: string, distro: string, wal?: Buffer): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const blob of blobs(db, wal)) {
    const h = rpmHeader(blob);
    const str = (t: number) => (h.get(t) as string[] | undefined)?.[0];
    const name = str(tag.name);
    const version = str(tag.version);
    const release = str(tag.release);
    if (!name || !version || name === 'gpg-pubkey') continue;
    const epoch = (h.get(tag.epoch) as number[] | undefined)?.[0];
    const arch = str(tag.arch);
    const full = `${version}${release ? `-${release}` : ''}`;
    const dirs = (h.get(tag.dirNames) ?? []) as string[];
    const index = (h.get(tag.dirIndexes) ?? []) as number[];
    const files = ((h.get(tag.baseNames) ?? []) as string[]).map((b, i) => `${dirs[index[i]] ?? ''}${b}`).filter((p) => p.startsWith('/'));
    const qualifiers = [arch ? `arch=${enc(arch)}` : '', epoch !== undefined ? `epoch=${epoch}` : ''].filter(Boolean).join('&');
    out.push({
      name, source,
      version: epoch !== undefined ? `${epoch}:${full}` : full,
      purl: `pkg:rpm/${enc(distro)}/${enc(name)}@${enc(full)}${qualifiers ? `?${qualifiers}` : ''}`,
      ...(str(tag.license) ? { license: str(tag.license) } : {}),
      ...(str(tag.vendor) ? { supplier: str(tag.vendor) } : {}),
      ...(files.length ? { files: [...new Set(files)].sort() } : {}),
    });
  }
  return out;
}

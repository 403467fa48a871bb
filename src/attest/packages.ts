// What an image's package databases and lockfiles say is installed — read from the files as they
// end up after every layer, never guessed from file names: dpkg (`var/lib/dpkg/status` and the
// distroless `status.d/*`), apk (`lib/apk/db/installed`), npm (`package-lock.json`, not inside
// node_modules), Python (`*.dist-info/METADATA`), rpm (its sqlite database, rpm.ts) and Go
// (`go.mod`; binaries' build info through golang.ts). Where the database lists a package's files (dpkg `info/<name>.list`, distroless
// `status.d/<name>.md5sums`, apk `F:`/`R:`, rpm's dirnames and basenames), they come along.
import { buildInfoPackages, goModPackages } from './golang.ts';
import type { GoBuildInfo } from './gobinary.ts';
import type { FoundPackage } from './found.ts';
import { rpmDatabases, rpmPackages } from './rpm.ts';

export type { FoundPackage } from './found.ts';

const dpkgInfo = 'var/lib/dpkg/info/';
const isDpkgStatus = (path: string) => path === 'var/lib/dpkg/status' || (path.startsWith('var/lib/dpkg/status.d/') && !path.endsWith('.md5sums'));

/** The paths whose bytes the SBOM reads (paths without a leading slash). */
export function isPackageDatabase(path: string): boolean {
  if (path === 'lib/apk/db/installed' || isDpkgStatus(path)) return true;
  if (rpmDatabases.includes(path) || rpmDatabases.includes(path.replace(/-wal$/, ''))) return true;
  if (path.startsWith('var/lib/dpkg/status.d/') || (path.startsWith(dpkgInfo) && path.endsWith('.list'))) return true;
  if ((path === 'go.mod' || path.endsWith('/go.mod')) && !/(^|\/)pkg\/mod\//.test(path)) return true;
  if ((path === 'package-lock.json' || path.endsWith('/package-lock.json')) && !path.includes('node_modules/')) return true;
  return /\.dist-info\/METADATA$/.test(path);
}

/** RFC 822-style paragraphs (dpkg status): blank-line separated, continuation lines start with a space. */
function paragraphs(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  for (const block of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const line of block.split('\n')) {
      if (/^[ \t]/.test(line) && last) { fields.set(last, `${fields.get(last)}\n${line.trim()}`); continue; }
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim();
      fields.set(last, line.slice(colon + 1).trim());
    }
    if (fields.size) out.push(fields);
  }
  return out;
}

const enc = (s: string) => encodeURIComponent(s).replace(/%3A/gi, ':');
const withFiles = (files: string[] | undefined) => (files?.length ? { files: [...new Set(files)].sort() } : {});

/** The file list dpkg keeps for a package: `info/<name>:<arch>.list`, `info/<name>.list`, or distroless md5sums. */
function dpkgFiles(files: Map<string, Buffer>, source: string, name: string, arch: string | undefined): string[] | undefined {
  const list = (arch && files.get(`${dpkgInfo}${name}:${arch}.list`)) || files.get(`${dpkgInfo}${name}.list`);
  if (list) return list.toString('utf8').split('\n').filter((l) => l.startsWith('/') && l !== '/.');
  if (!source.startsWith('/var/lib/dpkg/status.d/')) return undefined;
  const sums = files.get(`${source.slice(1)}.md5sums`) ?? files.get(`var/lib/dpkg/status.d/${name}.md5sums`);
  return sums?.toString('utf8').split('\n').map((l) => /^[0-9a-f]{32} [ *]?(.+)$/.exec(l)?.[1]).filter((p): p is string => !!p).map((p) => `/${p}`);
}

function dpkg(text: string, source: string, distro: string, files: Map<string, Buffer>): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const p of paragraphs(text)) {
    const name = p.get('Package');
    const version = p.get('Version');
    const status = p.get('Status');
    // status.d records of distroless images have no Status field; the main database has one.
    if (!name || !version || (status !== undefined && !/\binstalled$/.test(status))) continue;
    const arch = p.get('Architecture');
    out.push({
      name, version, source,
      purl: `pkg:deb/${distro}/${enc(name)}@${enc(version)}${arch ? `?arch=${enc(arch)}` : ''}`,
      ...(p.get('Maintainer') ? { supplier: p.get('Maintainer') } : {}),
      ...withFiles(dpkgFiles(files, source, name, arch)),
    });
  }
  return out;
}

function apk(text: string, source: string, distro: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const f = new Map<string, string>();
    const owned: string[] = [];
    let dir = '';
    for (const line of block.split('\n')) {
      if (line[1] !== ':') continue;
      f.set(line[0], line.slice(2));
      // F: a directory (relative to /), R: a file in the last F: directory.
      if (line[0] === 'F') { dir = line.slice(2); owned.push(`/${dir}`); }
      if (line[0] === 'R') owned.push(dir ? `/${dir}/${line.slice(2)}` : `/${line.slice(2)}`);
    }
    const name = f.get('P');
    const version = f.get('V');
    if (!name || !version) continue;
    const arch = f.get('A');
    out.push({
      name, version, source,
      purl: `pkg:apk/${distro}/${enc(name)}@${enc(version)}${arch ? `?arch=${enc(arch)}` : ''}`,
      ...(f.get('L') ? { license: f.get('L') } : {}),
      ...(f.get('m') ? { supplier: f.get('m') } : {}),
      ...withFiles(owned),
    });
  }
  return out;
}

interface LockEntry { version?: string; license?: string; link?: boolean; name?: string }

function npm(text: string, source: string): FoundPackage[] {
  let lock: { packages?: Record<string, LockEntry>; dependencies?: Record<string, LockEntry & { dependencies?: Record<string, LockEntry> }> };
  try { lock = JSON.parse(text) as typeof lock; } catch { return []; }
  const out: FoundPackage[] = [];
  const add = (name: string, e: LockEntry) => {
    if (!name || !e.version || e.link) return;
    const purlName = name.startsWith('@') ? `%40${name.slice(1)}` : name;
    out.push({ name, version: e.version, source, purl: `pkg:npm/${purlName}@${enc(e.version)}`, ...(typeof e.license === 'string' ? { license: e.license } : {}) });
  };
  if (lock.packages) {
    for (const [path, e] of Object.entries(lock.packages)) {
      if (path === '') continue; // the project itself
      add(e.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length), e);
    }
  } else if (lock.dependencies) {
    const walk = (deps: Record<string, LockEntry & { dependencies?: Record<string, LockEntry> }>) => {
      for (const [name, e] of Object.entries(deps)) { add(name, e); if (e.dependencies) walk(e.dependencies); }
    };
    walk(lock.dependencies);
  }
  return out;
}

function python(text: string, source: string): FoundPackage[] {
  const head = text.split(/\n\n/)[0];
  const field = (k: string) => new RegExp(`^${k}:\\s*(.+)$`, 'mi').exec(head)?.[1]?.trim();
  const name = field('Name');
  const version = field('Version');
  if (!name || !version) return [];
  const license = field('License');
  return [{ name, version, source, purl: `pkg:pypi/${enc(name.toLowerCase().replace(/[-_.]+/g, '-'))}@${enc(version)}`, ...(license && license !== 'UNKNOWN' ? { license } : {}) }];
}

/** The distribution's id from os-release (`debian`, `alpine`, …), for purls. */
export function distroId(osRelease: string | undefined, fallback: string): string {
  const id = osRelease && /^ID="?([^"\n]+)"?$/m.exec(osRelease)?.[1];
  return id || fallback;
}

/**
 * Every package the files (and Go binaries' build info, by path) say is installed, sorted by purl
 * and source (a stable document).
 */
export function packagesOf(files: Map<string, Buffer>, osRelease?: string, goBinaries: Map<string, GoBuildInfo> = new Map()): FoundPackage[] {
  const out: FoundPackage[] = [];
  for (const [path, info] of goBinaries) out.push(...buildInfoPackages(info, `/${path}`));
  for (const [path, bytes] of files) {
    const source = `/${path}`;
    if (rpmDatabases.includes(path)) { out.push(...rpmPackages(bytes, source, distroId(osRelease, 'unknown'), files.get(`${path}-wal`))); continue; }
    const text = bytes.toString('utf8');
    if (isDpkgStatus(path)) out.push(...dpkg(text, source, distroId(osRelease, 'debian'), files));
    else if (path === 'go.mod' || path.endsWith('/go.mod')) out.push(...goModPackages(text, source));
    else if (path === 'lib/apk/db/installed') out.push(...apk(text, source, distroId(osRelease, 'alpine')));
    else if (path.endsWith('package-lock.json')) out.push(...npm(text, source));
    else if (path.endsWith('/METADATA')) out.push(...python(text, source));
  }
  const seen = new Set<string>();
  return out
    .filter((p) => { const k = `${p.purl} ${p.source}`; return seen.has(k) ? false : (seen.add(k), true); })
    .sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : a.source < b.source ? -1 : 1));
}

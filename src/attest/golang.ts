// Go modules as packages: from the module info a Go binary carries (gobinary.ts reads it) and from
// `go.mod` files. Purls are pkg:golang/<module path>@<version>; a replaced module is reported as
// what replaced it, a module replaced by a local directory without a version.
import type { FoundPackage } from './found.ts';
import type { GoBuildInfo } from './gobinary.ts';

const enc = (s: string) => encodeURIComponent(s);

/** pkg:golang/<path>@<version>, each path segment percent-encoded; no version for '' and (devel). */
export function golangPurl(path: string, version: string): string {
  const name = path.split('/').map(enc).join('/');
  return `pkg:golang/${name}${version && version !== '(devel)' ? `@${enc(version)}` : ''}`;
}

function goPackage(path: string, version: string, source: string, note?: string): FoundPackage {
  return { name: path, version, source, purl: golangPurl(path, version), ...(note ? { note } : {}) };
}

/** The packages of a binary's build info: its main module (or package), deps, the standard library. */
export function buildInfoPackages(info: GoBuildInfo, source: string): FoundPackage[] {
  const out: FoundPackage[] = [];
  let mainPath = '';
  let hasMod = false;
  let last: { path: string; version: string; kind: string } | undefined;
  const flush = () => {
    if (!last) return;
    out.push(goPackage(last.path, last.version, source, `Go build info (${info.goVersion}), ${last.kind === 'mod' ? 'main module' : 'dependency'}`));
    last = undefined;
  };
  for (const line of info.modinfo.split('\n')) {
    const f = line.split('\t');
    if (f[0] === 'path') mainPath = f[1] ?? '';
    else if (f[0] === 'mod' || f[0] === 'dep') {
      flush();
      if (f[0] === 'mod') hasMod = true;
      if (f[1]) last = { path: f[1], version: f[2] ?? '', kind: f[0] };
    } else if (f[0] === '=>' && last) {
      // A replacement: the code in the binary came from it (a local directory has no version).
      const local = !f[2];
      out.push(goPackage(local ? last.path : f[1], local ? '' : f[2], source,
        `Go build info (${info.goVersion}), ${last.kind === 'mod' ? 'main module' : 'dependency'} ${local ? `replaced by local directory ${f[1]}` : `replacing ${last.path}@${last.version}`}`));
      last = undefined;
    }
  }
  flush();
  // Built without module mode (GOPATH): the main package's import path is all there is.
  if (!hasMod && mainPath) out.push(goPackage(mainPath, '', source, `Go build info (${info.goVersion}), main package, built without module information`));
  const v = /^go(\d+(?:\.\d+)*)/.exec(info.goVersion)?.[1];
  if (v) out.push({ name: 'stdlib', version: info.goVersion, source, purl: `pkg:golang/stdlib@${v}`, note: 'Go standard library the binary was built with' });
  return out;
}

interface GoModLine { verb: string; args: string[]; indirect: boolean }

/** The directives of a go.mod file, block forms (`require (` … `)`) flattened. */
function goModLines(text: string): GoModLine[] {
  const out: GoModLine[] = [];
  let block: string | undefined;
  for (const raw of text.split('\n')) {
    const comment = raw.indexOf('//');
    const code = (comment === -1 ? raw : raw.slice(0, comment)).trim();
    const indirect = comment !== -1 && /^\/\/\s*indirect\b/.test(raw.slice(comment).trim());
    if (!code) continue;
    const words = (code.match(/"(?:[^"\\]|\\.)*"|`[^`]*`|\S+/g) ?? []).map((w) => (/^["`]/.test(w) ? w.slice(1, -1) : w));
    if (block !== undefined) {
      if (code === ')') { block = undefined; continue; }
      out.push({ verb: block, args: words, indirect });
    } else if (words.length === 2 && words[1] === '(') {
      block = words[0];
    } else {
      out.push({ verb: words[0], args: words.slice(1), indirect });
    }
  }
  return out;
}

const isLocal = (p: string) => p.startsWith('./') || p.startsWith('../') || p.startsWith('/') || p === '.' || p === '..';

/** The modules a go.mod requires (the module itself is the project, not a package of it). */
export function goModPackages(text: string, source: string): FoundPackage[] {
  const lines = goModLines(text);
  const replaces = new Map<string, { path: string; version: string }>();
  for (const l of lines) {
    if (l.verb !== 'replace') continue;
    const arrow = l.args.indexOf('=>');
    if (arrow < 1) continue;
    const [from, fromVersion] = l.args.slice(0, arrow);
    const [to, toVersion] = l.args.slice(arrow + 1);
    if (to) replaces.set(fromVersion ? `${from}@${fromVersion}` : from, { path: to, version: toVersion ?? '' });
  }
  const out: FoundPackage[] = [];
  for (const l of lines) {
    if (l.verb !== 'require' || l.args.length < 2) continue;
    const [path, version] = l.args;
    const kind = l.indirect ? 'indirect requirement' : 'requirement';
    const r = replaces.get(`${path}@${version}`) ?? replaces.get(path);
    if (!r) out.push(goPackage(path, version, source, `go.mod ${kind}`));
    else if (isLocal(r.path)) out.push(goPackage(path, '', source, `go.mod ${kind}, replaced by local directory ${r.path}`));
    else out.push(goPackage(r.path, r.version, source, `go.mod ${kind}, replacing ${path}@${version}`));
  }
  return out;
}

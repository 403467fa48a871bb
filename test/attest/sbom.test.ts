// The SBOM document from layers made with GNU tar (not our writer): the host's real dpkg records and
// .list files over a merged-/usr tree, an apk database with F:/R: lines, a whiteout in an upper
// layer, a Go binary and a go.mod. Checksums are checked against sha1sum, the document against the
// SPDX 2.3 rules (spdx-check.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { sbomDocument } from '../../src/attest/index.ts';
import { checkSpdx23 } from './spdx-check.ts';

const rpmdb = gunzipSync(readFileSync(new URL('./fixtures/rpmdb.sqlite.gz', import.meta.url)));
const missing = ['/bin/busybox', '/usr/bin/umoci', '/var/lib/dpkg/info/busybox-static.list', '/var/lib/dpkg/info/tar.list'].find((p) => !existsSync(p));

interface Doc {
  packages: Array<{ name: string; SPDXID: string; versionInfo?: string; licenseDeclared: string; filesAnalyzed: boolean; hasFiles?: string[]; packageVerificationCode?: { packageVerificationCodeValue: string }; sourceInfo: string; externalRefs: Array<{ referenceLocator: string }> }>;
  files?: Array<{ fileName: string; SPDXID: string; checksums: Array<{ algorithm: string; checksumValue: string }> }>;
}

const sha1sum = (path: string) => execFileSync('sha1sum', [path], { encoding: 'utf8' }).split(' ')[0];

/** A gzipped layer of what `files` puts into a fresh dir; with `members`, only those (no parent dir entries). */
function layer(work: string, name: string, files: (root: string) => void, members = ['.']): string {
  const root = join(work, name);
  mkdirSync(root, { recursive: true });
  files(root);
  const out = `${root}.tar.gz`;
  execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-czf', out, ...members]);
  return out;
}

function put(root: string, path: string, content: string | Buffer): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), content);
}

test('packages with their files: dpkg .list through a /bin -> usr/bin symlink, apk F:/R:, whiteouts; Go build info and go.mod; valid SPDX 2.3', { skip: missing }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'slipway-sbom-'));
  const status = ['busybox-static', 'tar'].map((p) => execFileSync('dpkg', ['-s', p], { encoding: 'utf8' }).trim()).join('\n\n') + '\n';
  const base = layer(work, 'base', (root) => {
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    put(root, 'etc/os-release', 'ID=debian\n');
    symlinkSync('usr/bin', join(root, 'bin'));
    copyFileSync('/bin/busybox', join(root, 'usr/bin/busybox'));
    copyFileSync('/usr/bin/tar', join(root, 'usr/bin/tar'));
    put(root, 'usr/sbin/rmt-tar', readFileSync('/usr/sbin/rmt-tar'));
    // tar.list names /etc/rmt: here a symlink to a real file, still no File of its own.
    symlinkSync('/usr/sbin/rmt-tar', join(root, 'etc/rmt'));
    put(root, 'usr/share/doc/busybox-static/copyright', readFileSync('/usr/share/doc/busybox-static/copyright'));
    put(root, 'usr/share/doc/tar/copyright', readFileSync('/usr/share/doc/tar/copyright'));
    put(root, 'var/lib/dpkg/status', status);
    put(root, 'var/lib/dpkg/info/busybox-static.list', readFileSync('/var/lib/dpkg/info/busybox-static.list'));
    put(root, 'var/lib/dpkg/info/tar.list', readFileSync('/var/lib/dpkg/info/tar.list'));
  });
  const upper = layer(work, 'upper', (root) => {
    put(root, 'usr/share/doc/busybox-static/.wh.copyright', '');
    put(root, 'lib/apk/db/installed', 'P:hello\nV:1.0-r0\nA:x86_64\nL:MIT\nF:etc\nR:hello.conf\nR:gone.conf\nF:usr/bin\nR:hello\n\n');
    put(root, 'etc/hello.conf', 'greeting=hi\n');
    put(root, 'usr/bin/hello', '#!/bin/sh\necho hi\n');
    copyFileSync('/usr/bin/umoci', join(root, 'usr/bin/umoci'));
    put(root, 'src/app/go.mod', 'module example.com/app\n\ngo 1.22\n\nrequire (\n\tgithub.com/pkg/errors v0.9.1\n\tgolang.org/x/sys v0.1.0 // indirect\n)\n');
  });
  const doc = await sbomDocument({ layers: [base, upper], name: 'test', digest: 'sha256:' + '0'.repeat(64), created: '1970-01-01T00:00:00Z', tool: 'slipway-test' }) as unknown as Doc;
  checkSpdx23(doc);
  const byName = new Map(doc.packages.map((p) => [p.name, p]));
  const filesById = new Map((doc.files ?? []).map((f) => [f.SPDXID, f]));
  const filesOf = (name: string) => (byName.get(name)?.hasFiles ?? []).map((id) => filesById.get(id)?.fileName).sort();

  // busybox-static: /bin/busybox resolves through the symlink; its copyright was whited out; the
  // host's other listed files (man pages, examples) are not in this image; symlinks and dirs are no Files.
  assert.deepEqual(filesOf('busybox-static'), ['/bin/busybox']);
  assert.deepEqual(filesOf('tar'), ['/bin/tar', '/usr/sbin/rmt-tar', '/usr/share/doc/tar/copyright']);
  const sum = (name: string) => doc.files?.find((f) => f.fileName === name)?.checksums[0].checksumValue;
  assert.equal(sum('/bin/busybox'), sha1sum('/bin/busybox'));
  assert.equal(sum('/bin/tar'), sha1sum('/usr/bin/tar'));
  // The verification code as the spec defines it, computed by coreutils.
  const code = execFileSync('sh', ['-c', 'printf %s "$(sha1sum /usr/bin/tar /usr/sbin/rmt-tar /usr/share/doc/tar/copyright | cut -d" " -f1 | sort | tr -d "\\n")" | sha1sum | cut -d" " -f1'], { encoding: 'utf8' }).trim();
  assert.equal(byName.get('tar')?.packageVerificationCode?.packageVerificationCodeValue, code);
  assert.equal(byName.get('tar')?.filesAnalyzed, true);

  // apk: F: directories with their R: files; gone.conf is listed but absent.
  assert.deepEqual(filesOf('hello'), ['/etc/hello.conf', '/usr/bin/hello']);
  assert.equal(byName.get('hello')?.externalRefs[0].referenceLocator, 'pkg:apk/debian/hello@1.0-r0?arch=x86_64');

  // Go: the binary's build info (GOPATH mode as Debian builds it) and the go.mod's requirements.
  const umoci = byName.get('github.com/opencontainers/umoci/cmd/umoci');
  assert.ok(umoci, doc.packages.map((p) => p.name).join(', '));
  assert.equal(umoci.versionInfo, undefined);
  assert.equal(umoci.filesAnalyzed, false);
  assert.match(umoci.sourceInfo, /^read from \/usr\/bin\/umoci \(Go build info \(go1\.\d+/);
  assert.match(byName.get('stdlib')?.externalRefs[0].referenceLocator ?? '', /^pkg:golang\/stdlib@1\.\d+/);
  assert.equal(byName.get('github.com/pkg/errors')?.externalRefs[0].referenceLocator, 'pkg:golang/github.com/pkg/errors@v0.9.1');
  assert.match(byName.get('golang.org/x/sys')?.sourceInfo ?? '', /\/src\/app\/go\.mod \(go\.mod indirect requirement\)/);
  assert.ok(!byName.has('example.com/app'), 'the go.mod module itself is the project, not a package');

  // Deterministic: the same layers give the same bytes.
  const again = await sbomDocument({ layers: [base, upper], name: 'test', digest: 'sha256:' + '0'.repeat(64), created: '1970-01-01T00:00:00Z', tool: 'slipway-test' });
  assert.equal(JSON.stringify(again), JSON.stringify(doc));
});

test('the SPDX check itself rejects what SPDX 2.3 forbids', () => {
  const ok = { spdxVersion: 'SPDX-2.3', dataLicense: 'CC0-1.0', SPDXID: 'SPDXRef-DOCUMENT', name: 'x', creationInfo: { created: 't', creators: ['Tool: x'] }, packages: [] };
  checkSpdx23(ok);
  assert.throws(() => checkSpdx23({ ...ok, packages: [{ SPDXID: 'SPDXRef-P', name: 'p', downloadLocation: 'NOASSERTION', filesAnalyzed: false, hasFiles: ['SPDXRef-F'] }] }));
  assert.throws(() => checkSpdx23({ ...ok, files: [{ SPDXID: 'SPDXRef-F', fileName: '/a', checksums: [{ algorithm: 'MD5', checksumValue: 'x' }] }] }));
  assert.throws(() => checkSpdx23({ ...ok, packages: [{ SPDXID: 'SPDXRef-P', name: 'p' }] }));
  assert.throws(() => checkSpdx23({ ...ok, packages: [{ SPDXID: 'SPDXRef-P', name: 'p', downloadLocation: 'NOASSERTION', files: [] }] }));
});

test('distroless status.d records with their md5sums lists, <name>:<arch>.list of Multi-Arch packages, parent dirs left implicit; go.mod files in a module cache are not the image\'s requirements', async () => {
  const work = mkdtempSync(join(tmpdir(), 'slipway-sbom-'));
  const l = layer(work, 'distroless', (root) => {
    put(root, 'var/lib/dpkg/status.d/base', 'Package: base\nVersion: 1.0\nArchitecture: amd64\n');
    put(root, 'var/lib/dpkg/status.d/base.md5sums', `${'0'.repeat(32)}  etc/base.conf\n${'1'.repeat(32)}  usr/share/gone\n`);
    put(root, 'etc/base.conf', 'x=1\n');
    put(root, 'var/lib/dpkg/status', 'Package: libfoo\nStatus: install ok installed\nVersion: 2.0\nArchitecture: amd64\nMulti-Arch: same\n\nPackage: removed\nStatus: deinstall ok config-files\nVersion: 1\n');
    put(root, 'var/lib/dpkg/info/libfoo:amd64.list', '/.\n/usr\n/usr/lib\n/usr/lib/libfoo.so.2\n');
    put(root, 'var/lib/dpkg/info/removed.list', '/etc/removed.conf\n');
    put(root, 'usr/lib/libfoo.so.2', 'ELF-ish\n');
    put(root, 'etc/removed.conf', 'left behind\n');
    put(root, 'root/go/pkg/mod/github.com/some/dep@v1.0.0/go.mod', 'module github.com/some/dep\n\nrequire github.com/not/ours v1.0.0\n');
  }, ['var/lib/dpkg', 'etc', 'usr/lib/libfoo.so.2', 'root']);
  const doc = await sbomDocument({ layers: [l], name: 't', digest: 'sha256:' + '1'.repeat(64), created: '1970-01-01T00:00:00Z', tool: 't' }) as unknown as Doc;
  checkSpdx23(doc);
  const byName = new Map(doc.packages.map((p) => [p.name, p]));
  const filesOf = (name: string) => (byName.get(name)?.hasFiles ?? []).map((id) => doc.files?.find((f) => f.SPDXID === id)?.fileName).sort();
  assert.deepEqual([...byName.keys()].sort(), ['base', 'libfoo']);
  assert.deepEqual(filesOf('base'), ['/etc/base.conf']);
  assert.deepEqual(filesOf('libfoo'), ['/usr/lib/libfoo.so.2']);
  assert.equal(doc.files?.find((f) => f.fileName === '/etc/base.conf')?.checksums[0].checksumValue, sha1sum(join(work, 'distroless/etc/base.conf')));
});

test('rpm: the sqlite database (made by Debian\'s rpm, fixtures/make-rpmdb.sh) gives name, epoch:version-release, arch, license and the files that exist', async () => {
  const work = mkdtempSync(join(tmpdir(), 'slipway-sbom-'));
  const l = layer(work, 'fedoraish', (root) => {
    put(root, 'etc/os-release', 'NAME="Fedora Linux"\nID=fedora\n');
    put(root, 'var/lib/rpm/rpmdb.sqlite', rpmdb);
    put(root, 'etc/hello.conf', 'conf=1\n');
    put(root, 'usr/share/hello/hello.txt', 'hello\n');
    put(root, 'usr/bin/other', '#!/bin/sh\necho other\n');
  });
  const doc = await sbomDocument({ layers: [l], name: 't', digest: 'sha256:' + '3'.repeat(64), created: '1970-01-01T00:00:00Z', tool: 't' }) as unknown as Doc;
  checkSpdx23(doc);
  const got = doc.packages.map((p) => ({ name: p.name, version: p.versionInfo, purl: p.externalRefs[0].referenceLocator, license: p.licenseDeclared, files: (p.hasFiles ?? []).map((id) => doc.files?.find((f) => f.SPDXID === id)?.fileName).sort() }));
  assert.deepEqual(got, [
    { name: 'other', version: '0.1-1', purl: 'pkg:rpm/fedora/other@0.1-1?arch=noarch', license: 'GPL-2.0-only', files: ['/usr/bin/other'] },
    { name: 'slipway-hello', version: '2:1.2-3', purl: 'pkg:rpm/fedora/slipway-hello@1.2-3?arch=noarch&epoch=2', license: 'MIT', files: ['/etc/hello.conf', '/usr/share/hello/hello.txt'] },
  ]);
  assert.equal(doc.files?.find((f) => f.fileName === '/usr/bin/other')?.checksums[0].checksumValue, sha1sum(join(work, 'fedoraish/usr/bin/other')));
});

test('rpm: what the real rpm reads from the same database (when rpm is installed)', { skip: existsSync('/usr/bin/rpm') ? undefined : 'rpm not installed' }, async () => {
  const { rpmPackages } = await import('../../src/attest/rpm.ts');
  const dir = mkdtempSync(join(tmpdir(), 'slipway-rpmq-'));
  put(dir, 'var/lib/rpm/rpmdb.sqlite', rpmdb);
  const q = execFileSync('rpm', ['--root', dir, '--dbpath', '/var/lib/rpm', '-qa', '--qf', '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} [%{FILENAMES},]\\n'], { encoding: 'utf8' });
  const theirs = q.trim().split('\n').map((l) => l.replace(/,$/, '').split(' ')).map(([n, v, f]) => `${n} ${v} ${f.split(',').sort().join(',')}`).sort();
  const ours = rpmPackages(rpmdb, '/db', 'x').map((p) => `${p.name} ${p.version} ${(p.files ?? []).join(',')}`).sort();
  assert.deepEqual(ours, theirs);
});

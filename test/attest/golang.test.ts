// Go build info read from real Go binaries (Debian's umoci and skopeo), checked against binutils'
// own copy of the .go.buildinfo section; module info and go.mod texts in Go's formats.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GoBuildInfoScanner } from '../../src/attest/gobinary.ts';
import { buildInfoPackages, goModPackages } from '../../src/attest/golang.ts';

const binaries = ['/usr/bin/umoci', '/usr/bin/skopeo'];
const missing = binaries.find((b) => !existsSync(b)) ?? (existsSync('/usr/bin/objcopy') ? undefined : 'objcopy');

async function scan(path: string, highWaterMark: number): Promise<{ info: ReturnType<GoBuildInfoScanner['result']>; read: number }> {
  const s = new GoBuildInfoScanner();
  let read = 0;
  for await (const c of createReadStream(path, { highWaterMark })) {
    read += (c as Buffer).length;
    if (!s.push(c as Buffer)) break;
  }
  return { info: s.result(), read };
}

test('the build info of real Go binaries, in chunks of any size, matches the .go.buildinfo section binutils extracts; the read stops after it', { skip: missing }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-goinfo-'));
  for (const bin of binaries) {
    const section = join(dir, 'section');
    execFileSync('objcopy', ['-O', 'binary', '--only-section=.go.buildinfo', bin, section]);
    const bytes = readFileSync(section);
    for (const hwm of [1 << 20, 65536, 4099]) {
      const { info, read } = await scan(bin, hwm);
      assert.ok(info, `${bin} in ${hwm}-byte chunks`);
      assert.match(info.goVersion, /^go1\.\d+/);
      assert.ok(bytes.includes(Buffer.from(info.goVersion)), 'the version is in the section');
      assert.ok(info.modinfo.startsWith('path\t'), info.modinfo);
      assert.ok(bytes.includes(Buffer.from(info.modinfo)), 'the module info is in the section, verbatim');
      if (hwm < 1 << 20) assert.ok(read < statSync(bin).size, 'reading stopped once it was found');
    }
  }
});

test('a file that is not ELF is given up after its first chunk', async () => {
  const s = new GoBuildInfoScanner();
  assert.equal(s.push(Buffer.from('#!/bin/sh\necho \xff Go buildinf: but a script\n'.padEnd(200, ' '))), false);
  assert.equal(s.result(), undefined);
});

test('GOPATH-mode build info (as Debian builds): the main package without a version and the standard library', { skip: missing }, async () => {
  const { info } = await scan('/usr/bin/umoci', 1 << 20);
  assert.ok(info);
  const pkgs = buildInfoPackages(info, '/usr/bin/umoci');
  assert.deepEqual(pkgs.map((p) => p.purl), ['pkg:golang/github.com/opencontainers/umoci/cmd/umoci', `pkg:golang/stdlib@${info.goVersion.slice(2)}`]);
  assert.equal(pkgs[0].version, '');
  assert.equal(pkgs[1].version, info.goVersion);
  assert.ok(pkgs.every((p) => p.source === '/usr/bin/umoci'));
});

test('module-mode build info: main module, deps, => replacements (module and local directory)', () => {
  const modinfo = [
    'go\tgo1.22.4', 'path\texample.com/app/cmd/app', 'mod\texample.com/app\tv1.2.3\th1:abc=',
    'dep\tgithub.com/BurntSushi/toml\tv1.3.2\th1:x=', 'dep\tgolang.org/x/sys\tv0.1.0\th1:y=', '=>\tgolang.org/x/sys\tv0.2.0\th1:z=',
    'dep\texample.com/local\tv0.0.0-00010101000000-000000000000', '=>\t../local\t', 'build\tGOOS=linux', '',
  ].join('\n');
  const pkgs = buildInfoPackages({ goVersion: 'go1.22.4', modinfo }, '/app');
  assert.deepEqual(pkgs.map((p) => p.purl), [
    'pkg:golang/example.com/app@v1.2.3', 'pkg:golang/github.com/BurntSushi/toml@v1.3.2', 'pkg:golang/golang.org/x/sys@v0.2.0',
    'pkg:golang/example.com/local', 'pkg:golang/stdlib@1.22.4',
  ]);
  assert.match(pkgs[2].note ?? '', /replacing golang.org\/x\/sys@v0.1.0/);
  assert.match(pkgs[3].note ?? '', /replaced by local directory \.\.\/local/);
  // (devel) main modules carry no purl version.
  assert.equal(buildInfoPackages({ goVersion: 'go1.22.4', modinfo: 'path\tx.io/a\nmod\tx.io/a\t(devel)\t\n' }, '/a')[0].purl, 'pkg:golang/x.io/a');
});

test('go.mod: single-line and block requires, // indirect, replace by module (one version or all) and by local directory', () => {
  const gomod = [
    'module example.com/app // the project itself, not a package', '', 'go 1.22', 'toolchain go1.22.4',
    'require github.com/pkg/errors v0.9.1', '', 'require (',
    '\tgolang.org/x/sys v0.1.0 // indirect', '\tgithub.com/old/name v1.0.0', '\t"example.com/quoted" v2.0.0+incompatible', '\texample.com/mine v0.0.0', ')', '',
    'replace github.com/old/name v1.0.0 => github.com/new/name v1.1.0', 'replace (', '\texample.com/mine => ./mine', ')',
    'exclude golang.org/x/sys v0.0.9', '',
  ].join('\n');
  const pkgs = goModPackages(gomod, '/src/go.mod');
  assert.deepEqual(pkgs.map((p) => [p.purl, p.note]), [
    ['pkg:golang/github.com/pkg/errors@v0.9.1', 'go.mod requirement'],
    ['pkg:golang/golang.org/x/sys@v0.1.0', 'go.mod indirect requirement'],
    ['pkg:golang/github.com/new/name@v1.1.0', 'go.mod requirement, replacing github.com/old/name@v1.0.0'],
    ['pkg:golang/example.com/quoted@v2.0.0%2Bincompatible', 'go.mod requirement'],
    ['pkg:golang/example.com/mine', 'go.mod requirement, replaced by local directory ./mine'],
  ]);
});

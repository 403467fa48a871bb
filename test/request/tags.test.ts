// Tags are checked once, up front, with docker's rules: lowercase repository (a capitalised first
// component would be read as a registry host), the tag's charset and length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { makeBuildRequest } from '../../src/request/index.ts';

const cwd = mkdtempSync(`${tmpdir()}/slipway-tags-`);
const request = (tag: string) => makeBuildRequest({ context: '.', file: '-', stdin: () => 'FROM scratch\n', tags: [tag], cwd, env: {} });

test('tags: docker accepts these, and so do we', () => {
  for (const t of ['app', 'app:1.0', 'Host.Example.com/app:Tag_1', 'localhost:5000/a/b:v-1', 'ghcr.io/o/r@sha256:' + 'a'.repeat(64)]) {
    assert.deepEqual(request(t).tags, [t]);
  }
});

test('tags: each bad one is refused before any work, saying why', () => {
  const cases: Array<[string, RegExp]> = [
    ['UPPER/case:tag', /invalid tag "UPPER\/case:tag": repository name must be lowercase/],
    ['app/UPPER:tag', /invalid image reference/],
    ['app:' + 'a'.repeat(129), /at most 128/],
    ['app:bad!tag', /the tag "bad!tag" is not valid/],
    ['app:-lead', /not starting with \. or -/],
    ['a//b', /invalid image reference/],
  ];
  for (const [tag, message] of cases) assert.throws(() => request(tag), message, tag);
});

test('--add-host: HOST:IP or HOST=IP (IPv6 with or without brackets); anything else is refused', () => {
  const hosts = (h: string[]) => makeBuildRequest({ context: '.', file: '-', stdin: () => 'FROM scratch\n', addHosts: h, cwd, env: {} }).extraHosts;
  assert.deepEqual(hosts(['a.b:1.2.3.4', 'c=5.6.7.8', 'd:[fe80::1]', 'e:::1']), [
    { host: 'a.b', ip: '1.2.3.4' }, { host: 'c', ip: '5.6.7.8' }, { host: 'd', ip: 'fe80::1' }, { host: 'e', ip: '::1' },
  ]);
  assert.equal(hosts([]), undefined);
  assert.throws(() => hosts(['nohost']), /invalid --add-host "nohost": expected HOST:IP/);
  assert.throws(() => hosts(['a:not-an-ip']), /invalid --add-host "a:not-an-ip"/);
  assert.throws(() => hosts(['a:host-gateway']), /host-gateway is the Docker daemon's gateway address/);
});

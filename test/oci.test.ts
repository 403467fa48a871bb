import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePlatform, formatPlatform, platformMatches, sha256, hasherFor, isDigest } from '../src/oci/index.ts';

test('platform: containerd normalisation of arch aliases and default variants', () => {
  assert.equal(formatPlatform(parsePlatform('linux/arm64/v8')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('linux/aarch64')), 'linux/arm64');
  assert.equal(formatPlatform(parsePlatform('linux/x86_64')), 'linux/amd64');
  assert.equal(formatPlatform(parsePlatform('linux/arm')), 'linux/arm/v7');
  assert.equal(formatPlatform(parsePlatform('linux/armhf')), 'linux/arm/v7');
  assert.equal(formatPlatform(parsePlatform('arm64')), 'linux/arm64');
  assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
  assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
});

test('platform: malformed strings get one clear error', () => {
  for (const bad of ['', 'linux//amd64', 'linux/amd64/v8/x', 'linux/am d64']) {
    assert.throws(() => parsePlatform(bad), /invalid platform .*expected os\/arch\[\/variant\]/);
  }
});

test('digest: sha256 and streaming verification', () => {
  const d = sha256('hello');
  assert.equal(d, 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  assert.ok(isDigest(d));
  const h = hasherFor(d);
  h.update(Buffer.from('hel'));
  h.update(Buffer.from('lo'));
  assert.equal(h.digest(), d);
  assert.throws(() => hasherFor('md5:abc'), /invalid digest/);
});

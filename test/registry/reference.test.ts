import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference, familiarName } from '../../src/registry/reference.ts';
import { UserError } from '../../src/errors.ts';

const d = 'sha256:' + 'a'.repeat(64);

test('reference: normalised like distribution/reference', () => {
  const table: Array<[string, string, string]> = [
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['library/busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['index.docker.io/foo/bar', 'docker.io/foo/bar:latest', 'foo/bar:latest'],
    ['docker.io/foo/bar/baz:x', 'docker.io/foo/bar/baz:x', 'foo/bar/baz:x'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/app:v1', 'localhost:5000/app:v1', 'localhost:5000/app:v1'],
    ['127.0.0.1:5000/a/b', '127.0.0.1:5000/a/b:latest', '127.0.0.1:5000/a/b:latest'],
    ['ghcr.io/owner/app@' + d, 'ghcr.io/owner/app@' + d, 'ghcr.io/owner/app@' + d],
    ['ghcr.io/owner/app:1.0@' + d, 'ghcr.io/owner/app:1.0@' + d, 'ghcr.io/owner/app:1.0@' + d],
    ['Registry.Example.com/a_b/c__d/e-f--g.h:TAG_1', 'Registry.Example.com/a_b/c__d/e-f--g.h:TAG_1', 'Registry.Example.com/a_b/c__d/e-f--g.h:TAG_1'],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
  ];
  for (const [input, full, familiar] of table) {
    const r = parseReference(input);
    assert.equal(r.toString(), full, input);
    assert.equal(familiarName(r), familiar, input);
  }
  const r = parseReference('ghcr.io/owner/app:1.0@' + d);
  assert.deepEqual([r.registry, r.repository, r.tag, r.digest], ['ghcr.io', 'owner/app', '1.0', d]);
  assert.equal(parseReference('x/y', { defaultTag: false }).tag, undefined);
});

test('reference: malformed references get one clear UserError', () => {
  const table: Array<[string, RegExp]> = [
    ['', /empty/],
    ['Busybox', /must be lowercase/],
    ['docker.io/Foo/bar', /must be lowercase/],
    ['a'.repeat(64).replace(/a/g, 'f'), /image ID/],
    ['busybox:', /tag "" is not valid/],
    ['busybox:-x', /tag "-x" is not valid/],
    ['busybox:' + 'x'.repeat(129), /tag .* is not valid/],
    ['busybox@sha256:abc', /digest "sha256:abc" is not valid/],
    ['busybox@md5:' + 'a'.repeat(32), /unsupported digest algorithm "md5"/],
    ['busybox@sha256:' + 'A'.repeat(64), /lowercase hex/],
    ['foo//bar', /characters or separators/],
    ['foo/-bar', /characters or separators/],
    ['foo/bar-', /characters or separators/],
    ['host:port/x', /characters or separators/],
    ['a b', /characters or separators/],
    ['example.com/' + 'a'.repeat(250), /longer than 255/],
  ];
  for (const [input, re] of table) {
    assert.throws(() => parseReference(input), (err: unknown) => err instanceof UserError && re.test(err.message) && /invalid image reference/.test(err.message), input);
  }
});

// Image names as skopeo writes them, parsed into a transport and its parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseImageName } from '../../src/transport/index.ts';

test('skopeo transport names: the path ends at the first colon, the rest is the tag or name', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['oci:./layout', { transport: 'oci', path: './layout', tag: undefined }],
    ['oci:/tmp/layout:v1', { transport: 'oci', path: '/tmp/layout', tag: 'v1' }],
    ['oci-archive:app.tar:1.0', { transport: 'oci-archive', path: 'app.tar', tag: '1.0' }],
    ['docker-archive:app.tar:ghcr.io/org/app:1', { transport: 'docker-archive', path: 'app.tar', tag: 'ghcr.io/org/app:1' }],
    ['docker-archive:app.tar', { transport: 'docker-archive', path: 'app.tar', tag: undefined }],
  ];
  for (const [text, want] of cases) {
    const got = parseImageName(text) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(want)) assert.equal(got[k], v, `${text}: ${k}`);
  }
  const explicit = parseImageName('docker://127.0.0.1:5000/app:1');
  const bare = parseImageName('127.0.0.1:5000/app:1');
  assert.equal(explicit.transport, 'docker');
  assert.equal(explicit.transport === 'docker' && bare.transport === 'docker' && explicit.ref.toString() === bare.ref.toString(), true);
  const short = parseImageName('busybox:latest');
  assert.equal(short.transport === 'docker' && short.ref.toString(), 'docker.io/library/busybox:latest');
});

test('bad names: one clear error each', () => {
  assert.throws(() => parseImageName('oci:'), /invalid image name "oci:": oci: needs a path/);
  assert.throws(() => parseImageName('oci-archive:x.tar:bad tag'), /"bad tag" is not a tag/);
  assert.throws(() => parseImageName('containers-storage:app'), /the containers-storage: transport is not supported/);
  assert.throws(() => parseImageName('docker-daemon:app:1'), /the docker-daemon: transport is not supported/);
});

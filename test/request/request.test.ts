import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UserError } from '../../src/errors.ts';
import { makeBuildRequest, splitList } from '../../src/request/index.ts';
import { parseCacheRef, parseOutputSpec, parseSecretSpec } from '../../src/request/parse.ts';

function context(): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-req-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  return dir;
}

test('splitList: build-push-action list inputs (newlines, CSV, quotes, comments)', () => {
  assert.deepEqual(splitList('linux/amd64,linux/arm64'), ['linux/amd64', 'linux/arm64']);
  assert.deepEqual(splitList('a:1\n  b:2 \n\n# comment\nc:3,d:4'), ['a:1', 'b:2', 'c:3', 'd:4']);
  assert.deepEqual(splitList('"x,y",z'), ['x,y', 'z']);
  assert.deepEqual(splitList('A=1,2\nB=3', { commas: false }), ['A=1,2', 'B=3']);
  assert.deepEqual(splitList(undefined), []);
});

test('parseOutputSpec: buildx --output forms', () => {
  assert.deepEqual(parseOutputSpec('type=oci,dest=out.tar'), { type: 'oci', dest: 'out.tar', tar: true });
  assert.deepEqual(parseOutputSpec('type=oci,dest=layout,tar=false'), { type: 'oci', dest: 'layout', tar: false });
  assert.deepEqual(parseOutputSpec('type=docker,dest=img.tar'), { type: 'docker', dest: 'img.tar' });
  assert.deepEqual(parseOutputSpec('type=registry'), { type: 'registry' });
  assert.deepEqual(parseOutputSpec('type=image,push=true'), { type: 'registry' });
  assert.throws(() => parseOutputSpec('type=oci'), /needs dest=PATH/);
  assert.throws(() => parseOutputSpec('type=tar,dest=x'), /unsupported output type "tar"/);
  assert.throws(() => parseOutputSpec('type=oci,dest'), /field "dest" is not key=value/);
});

test('parseSecretSpec: buildx --secret forms', () => {
  assert.deepEqual(parseSecretSpec('id=npm,src=/home/u/.npmrc'), { id: 'npm', src: '/home/u/.npmrc' });
  assert.deepEqual(parseSecretSpec('id=tok,env=TOKEN'), { id: 'tok', env: 'TOKEN' });
  assert.deepEqual(parseSecretSpec('type=env,id=TOKEN'), { id: 'TOKEN', env: 'TOKEN' });
  assert.throws(() => parseSecretSpec('src=/x'), /needs id=NAME/);
  assert.deepEqual(parseSecretSpec('id=TOKEN'), { id: 'TOKEN', env: 'TOKEN', src: 'TOKEN' }, 'a bare id: the variable, else the file');
});

test('makeBuildRequest: flags become one typed request', () => {
  const dir = context();
  writeFileSync(join(dir, 'token.txt'), 's3cret');
  const req = makeBuildRequest({
    context: '.', cwd: dir, env: { FROM_ENV: 'yes', TOKEN: 'abc', HOME: '/home/u' },
    buildArgs: ['A=1', 'FROM_ENV', 'UNSET'], labels: ['org.opencontainers.image.title=hello=world'],
    platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/aarch64'], tags: ['localhost:5000/app:1'], push: true,
    secrets: ['id=file,src=token.txt', 'id=tok,env=TOKEN', 'id=TOKEN', 'id=token.txt'], sourceDateEpoch: '1700000000',
  });
  assert.equal(req.contextDir, dir);
  assert.equal(req.dockerfile.contents, 'FROM scratch\n');
  assert.deepEqual(req.buildArgs, { A: '1', FROM_ENV: 'yes' });
  assert.deepEqual(req.labels, { 'org.opencontainers.image.title': 'hello=world' });
  assert.deepEqual(req.platforms.map((p) => `${p.os}/${p.architecture}`), ['linux/amd64', 'linux/arm64']);
  assert.deepEqual(req.outputs, [{ type: 'registry' }]);
  assert.equal(req.secrets[0].value.toString(), 's3cret');
  assert.equal(req.secrets[1].value.toString(), 'abc');
  assert.equal(req.secrets[2].value.toString(), 'abc', 'bare id: from the environment');
  assert.equal(req.secrets[3].value.toString(), 's3cret', 'bare id: from the file of that name');
  assert.equal(req.sourceDateEpoch, 1700000000);
  assert.equal(req.cacheDir, '/home/u/.cache/slipway');
  assert.equal(req.network, 'default');
});

test('makeBuildRequest: bad input gets one clear error', () => {
  const dir = context();
  const base = { context: '.', cwd: dir, env: {} };
  assert.throws(() => makeBuildRequest({ ...base, context: 'missing' }), /build context .*missing is not a directory/);
  assert.throws(() => makeBuildRequest({ ...base, file: 'nope/Dockerfile' }), /cannot read Dockerfile/);
  assert.throws(() => makeBuildRequest({ ...base, push: true }), /pushing needs at least one tag/);
  assert.throws(() => makeBuildRequest({ ...base, tags: ['registry.example.com/Bad Name:1'] }), /invalid reference|reference/i);
  assert.throws(() => makeBuildRequest({ ...base, platforms: ['linux//x'] }), /invalid platform/);
  assert.throws(() => makeBuildRequest({ ...base, network: 'bridge' }), /invalid network "bridge"/);
  assert.throws(() => makeBuildRequest({ ...base, sourceDateEpoch: 'yesterday' }), /invalid SOURCE_DATE_EPOCH/);
  assert.throws(() => makeBuildRequest({ ...base, secrets: ['id=x,env=NOPE'] }), /environment variable NOPE is not set/);
  mkdirSync(join(dir, 'sub'));
  assert.throws(() => makeBuildRequest({ ...base, context: 'sub' }), /cannot read Dockerfile .*sub\/Dockerfile/);
});

test('parseCacheRef: buildx --cache-from/--cache-to, registry type only', () => {
  assert.deepEqual(parseCacheRef('type=registry,ref=ghcr.io/o/app:cache', 'cache-to'), { ref: 'ghcr.io/o/app:cache', mode: 'min' });
  assert.deepEqual(parseCacheRef('type=registry,ref=ghcr.io/o/app:cache,mode=max,image-manifest=true,oci-mediatypes=true', 'cache-to'), { ref: 'ghcr.io/o/app:cache', mode: 'max' });
  assert.deepEqual(parseCacheRef('ghcr.io/o/app:cache', 'cache-from'), { ref: 'ghcr.io/o/app:cache', mode: 'min' });
  assert.throws(() => parseCacheRef('type=registry,ref=x,mode=all', 'cache-to'), /mode must be min or max/);
  assert.throws(() => parseCacheRef('type=registry,ref=x,frobnicate=1', 'cache-to'), /unknown option frobnicate/);
  assert.throws(() => parseCacheRef('type=local,src=/tmp/c', 'cache-from'), (e: UserError) => /type=local is not supported/.test(e.message) && /--cache-dir/.test(e.hint ?? ''));
  assert.throws(() => parseCacheRef('type=gha', 'cache-to'), (e: UserError) => /type=gha is not supported/.test(e.message) && /Actions cache/.test(e.hint ?? ''));
  assert.throws(() => parseCacheRef('type=registry', 'cache-to'), /needs ref=/);
});

test('makeBuildRequest: --allow entitlements as buildx parses them; --cdi-spec-dir relative to cwd', () => {
  const dir = context();
  const r = makeBuildRequest({ context: dir, cwd: dir, env: {}, allow: ['security.insecure', 'device=example.com/gpu=0', 'device=vendor.com/x=1,alias=mine', 'network.host'], cdiSpecDirs: ['cdi', '/etc/cdi'] });
  assert.deepEqual(r.allow, { securityInsecure: true, networkHost: true, devices: { all: false, names: { 'example.com/gpu=0': '', mine: 'vendor.com/x=1' } } });
  assert.deepEqual(r.cdiSpecDirs, [join(dir, 'cdi'), '/etc/cdi']);
  assert.deepEqual(makeBuildRequest({ context: dir, cwd: dir, env: {}, allow: ['device=example.com/gpu=0', 'device'] }).allow?.devices, { all: true, names: { 'example.com/gpu=0': '' } });
  const none = makeBuildRequest({ context: dir, cwd: dir, env: {} });
  assert.equal(none.allow, undefined);
  assert.equal(none.cdiSpecDirs, undefined);
  assert.throws(() => makeBuildRequest({ context: dir, cwd: dir, env: {}, allow: ['security'] }), (e: UserError) => /unknown entitlement security/.test(e.message) && /security\.insecure/.test(e.hint ?? ''));
  assert.throws(() => makeBuildRequest({ context: dir, cwd: dir, env: {}, allow: ['device=x,alias'] }), /invalid device config "alias"/);
});

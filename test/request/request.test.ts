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

test('parseOutputSpec: buildx exporter keys — layer keys, names, annotations; an unknown key is an error listing the known ones', () => {
  assert.deepEqual(parseOutputSpec('type=oci,dest=o.tar,compression=zstd,compression-level=19,force-compression=true'), { type: 'oci', dest: 'o.tar', tar: true, compression: 'zstd', compressionLevel: 19, forceCompression: true });
  assert.deepEqual(parseOutputSpec('type=registry,compression=Uncompressed,oci-mediatypes=false'), { type: 'registry', compression: 'uncompressed', ociMediaTypes: false });
  assert.deepEqual(parseOutputSpec('type=image,push=true,force-compression='), { type: 'registry', forceCompression: true }, 'a bare key= is true, as BuildKit reads it');
  assert.deepEqual(parseOutputSpec('type=image,push=false,compression=gzip'), { type: 'none', compression: 'gzip' });
  assert.deepEqual(parseOutputSpec('type=image,"name=r.example/a:1,r.example/b:2",push=true,registry.insecure=true,store=false,unpack=false'), { type: 'registry', names: ['r.example/a:1', 'r.example/b:2'], insecure: true });
  assert.deepEqual(parseOutputSpec('type=oci,dest=o.tar,annotation.org.opencontainers.image.Title=App,annotation-index.k=v,annotation-manifest[linux/arm64].k=w'), {
    type: 'oci', dest: 'o.tar', tar: true, annotations: ['manifest:org.opencontainers.image.Title=App', 'index:k=v', 'manifest[linux/arm64]:k=w'],
  });
  assert.deepEqual(parseOutputSpec('type=docker,dest=d.tar,oci-mediatypes=true'), { type: 'docker', dest: 'd.tar' }, 'a docker archive holds no media types');
  assert.throws(() => parseOutputSpec('type=oci,dest=o.tar,compression=estargz'), /compression=estargz is not supported/);
  assert.throws(() => parseOutputSpec('type=oci,dest=o.tar,compression=lz4'), (e: UserError) => /unsupported compression "lz4"/.test(e.message) && /gzip\|zstd\|uncompressed/.test(e.hint ?? ''));
  assert.throws(() => parseOutputSpec('type=oci,dest=o.tar,compression-level=high'), /not a whole number/);
  assert.throws(() => parseOutputSpec('type=oci,dest=o.tar,force-compression=maybe'), /force-compression=maybe is not true or false/);
  assert.throws(() => parseOutputSpec('type=oci,dest=o.tar,compresion=zstd'), (e: UserError) => /unknown key "compresion" for type=oci/.test(e.message) && /dest, tar, name, compression, compression-level, force-compression, oci-mediatypes/.test(e.hint ?? ''));
  assert.throws(() => parseOutputSpec('type=registry,push-by-digest=true'), (e: UserError) => /unknown key "push-by-digest"/.test(e.message) && /--merge-platforms/.test(e.hint ?? ''));
  assert.throws(() => parseOutputSpec('type=cacheonly,compression=zstd'), /unknown key "compression" for type=cacheonly/);
});

test('makeBuildRequest: one compression for the build from the outputs and --compression; names become tags; output annotations apply', () => {
  const dir = context();
  const base = { context: '.', cwd: dir, env: {} };
  const plain = makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar'] });
  assert.equal(plain.compression, undefined, 'nothing asked: no compression field (gzip, as ever)');
  assert.equal(plain.dockerMediaTypes, false);
  const zstd = makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar,compression=zstd', 'type=oci,dest=p.tar'], compression: 'zstd', compressionLevel: '9' });
  assert.deepEqual(zstd.compression, { type: 'zstd', level: 9, force: false });
  assert.deepEqual(makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar,compression-level=1'] }).compression, { type: 'gzip', level: 1, force: false });
  assert.deepEqual(makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar,compression-level=0'] }).compression, { type: 'gzip', level: 0, force: false }, 'gzip 0 (stored) as BuildKit takes it');
  assert.equal(makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar,oci-mediatypes=false'] }).dockerMediaTypes, true);
  assert.equal(makeBuildRequest({ ...base, outputs: ['type=oci,dest=o.tar,compression=uncompressed'], dockerMediaTypes: true }).compression?.type, 'uncompressed', 'Docker has an uncompressed layer type');
  const named = makeBuildRequest({ ...base, tags: ['r.example/a:1'], outputs: ['type=image,name=r.example/a:1,push=true,registry.insecure=true,annotation.k=v'] });
  assert.deepEqual(named.tags, ['r.example/a:1']);
  assert.ok(named.insecureRegistries.includes('r.example'));
  assert.deepEqual(named.annotations, [{ level: 'manifest', key: 'k', value: 'v' }]);
  assert.deepEqual(makeBuildRequest({ ...base, outputs: ['type=registry,name=r.example/b:2'] }).tags, ['r.example/b:2'], 'name= alone is enough to push');
  const errors: Array<[Partial<typeof base> & Record<string, unknown>, RegExp]> = [
    [{ outputs: ['type=oci,dest=o.tar,compression=zstd', 'type=registry,compression=gzip'], tags: ['r.example/a:1'] }, /conflicting layer compressions: --output type=oci,dest=o.tar asks for zstd, --output type=registry for gzip/],
    [{ outputs: ['type=oci,dest=o.tar,force-compression=true', 'type=oci,dest=p.tar,force-compression=false'] }, /conflicting force-compression settings/],
    [{ outputs: ['type=oci,dest=o.tar,oci-mediatypes=true'], dockerMediaTypes: true }, /conflicting media types \(oci-mediatypes\): .* asks for true, --docker-media-types for false/],
    [{ outputs: ['type=oci,dest=o.tar'], compression: 'zstd', dockerMediaTypes: true }, /zstd layers have no Docker media type/],
    [{ outputs: ['type=docker,dest=d.tar'], compression: 'zstd' }, /a docker archive \(--output type=docker,dest=d.tar\) cannot hold zstd layers/],
    [{ outputs: ['type=oci,dest=o.tar,compression=zstd,compression-level=23'] }, /zstd compression level 23 is out of range/],
    [{ outputs: ['type=oci,dest=o.tar,compression-level=-1'] }, /gzip compression level -1 is out of range/],
  ];
  for (const [raw, message] of errors) assert.throws(() => makeBuildRequest({ ...base, ...raw }), message);
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

// Attestations as OCI referrers, end to end: a two-platform push with provenance and an SBOM into
// the real CNCF registry (no referrers API there: the referrers tag schema), and through a fixture
// that adds the referrers API in front of it. Read back with skopeo and plain HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { startReferrersApi, type ReferrersApi } from '../harness/referrers-api.ts';
import { buildContext, makeContext, run } from './helpers.ts';
import { checkSpdx23 } from '../attest/spdx-check.ts';

const missing = registryMissing() ?? fixturesMissing();
const inToto = 'application/vnd.in-toto+json';
const secretValue = 's3cr3t-value-that-must-not-leak';

interface Provenance {
  buildDefinition: { externalParameters: { request: { frontend: string; args: Record<string, string>; secrets?: unknown } }; resolvedDependencies: Array<{ uri: string }> };
  runDetails: { metadata: { startedOn: string; finishedOn: string } };
}
interface Sbom { spdxVersion: string; packages: Array<{ name: string; versionInfo: string; externalRefs: Array<{ referenceLocator: string }> }> }

interface Desc { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string>; platform?: { os: string; architecture: string } }

async function raw(ref: string): Promise<Record<string, unknown>> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function blob(host: string, repo: string, digest: string): Promise<string> {
  const res = await fetch(`http://${host}/v2/${repo}/blobs/${digest}`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The host's dpkg record of a package (a real status paragraph, not a made-up one). */
function dpkgRecord(pkg: string): string {
  return execFileSync('dpkg', ['-s', pkg], { encoding: 'utf8' });
}

function existsMissing(paths: string[]): string | undefined {
  return paths.find((p) => !existsSync(p));
}

/** The Go version in a binary's inline build info header (read apart from the code under test). */
function goVersionOf(path: string): string {
  const bin = readFileSync(path);
  let at = bin.indexOf('\xff Go buildinf:', 0, 'latin1');
  while (at % 16 !== 0) at = bin.indexOf('\xff Go buildinf:', at + 1, 'latin1');
  return bin.toString('latin1', at + 33, at + 33 + bin[at + 32]);
}

/**
 * A copy of a real Go binary whose inline build info blob is rewritten to say `goVersion` and the
 * module-mode `modinfo` (framed by the original's sentinels): a binary as Go >= 1.18 builds it in
 * module mode, which Debian's own (GOPATH-mode) binaries are not. It is not meant to run.
 */
function moduleModeBinary(from: string, goVersion: string, modinfo: string): Buffer {
  const bin = Buffer.from(readFileSync(from));
  const magic = Buffer.from('\xff Go buildinf:', 'latin1');
  let at = bin.indexOf(magic);
  while (at % 16 !== 0) at = bin.indexOf(magic, at + 1);
  const varint = (n: number) => { const out: number[] = []; while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7; } out.push(n); return Buffer.from(out); };
  // The original's module info: [version][modinfo], each length-prefixed; its 16-byte sentinels frame ours.
  let p = at + 32 + 1 + bin[at + 32];
  let len = 0;
  for (let shift = 0; ; shift += 7) { const b = bin[p++]; len |= (b & 0x7f) << shift; if (b < 0x80) break; }
  const old = bin.subarray(p, p + len);
  const framed = Buffer.concat([old.subarray(0, 16), Buffer.from(modinfo), old.subarray(old.length - 16)]);
  const blob = Buffer.concat([varint(goVersion.length), Buffer.from(goVersion), varint(framed.length), framed]);
  blob.copy(bin, at + 32);
  return bin;
}

describe('attestations as referrers', { skip: missing }, () => {
  let reg: TestRegistry;
  let api: ReferrersApi;
  let base: string;
  let busybox: string;
  const busyboxVersion = /^Version: (.+)$/m.exec(dpkgRecord('busybox-static'))?.[1];

  before(async () => {
    reg = await startRegistry();
    api = await startReferrersApi(reg.url);
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
    // A base image with a dpkg database: the host's records of two real packages.
    const status = `${dpkgRecord('busybox-static').trim()}\n\n${dpkgRecord('tar').trim()}\n`;
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY status /var/lib/dpkg/status\n`, status });
    base = `${reg.host}/base/debianish:1`;
    await buildContext(ctx, { tags: [base], push: true, platforms: ['linux/amd64', 'linux/arm64'] });
  });
  after(async () => { await api?.stop(); await reg?.stop(); });

  function appContext(): string {
    return makeContext({ Dockerfile: `FROM ${base}\nARG GREETING\nCOPY app.txt /app.txt\n`, 'app.txt': 'app', 'secret.txt': secretValue });
  }

  async function checkReferrers(host: string, repo: string, index: { manifests: Desc[] }, referrersOf: (subject: string) => Promise<Desc[]>): Promise<void> {
    for (const m of index.manifests) {
      const refs = await referrersOf(m.digest);
      const kinds = refs.map((r) => r.annotations?.['in-toto.io/predicate-type']).sort();
      assert.deepEqual(kinds, ['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document'], `referrers of ${m.digest}`);
      for (const r of refs) {
        assert.equal(r.artifactType, inToto);
        const artifact = await raw(`${host}/${repo}@${r.digest}`) as { subject: Desc; layers: Desc[]; artifactType: string };
        assert.equal(artifact.subject.digest, m.digest);
        assert.equal(artifact.artifactType, inToto);
        const text = await blob(host, repo, artifact.layers[0].digest);
        assert.ok(!text.includes(secretValue), 'a secret reached an attestation');
        const statement = JSON.parse(text) as { _type: string; predicateType: string; subject: Array<{ digest: { sha256: string } }>; predicate: Provenance & Sbom };
        assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
        assert.equal(statement.subject[0].digest.sha256, m.digest.slice('sha256:'.length));
        assert.equal(statement.predicateType, r.annotations?.['in-toto.io/predicate-type']);
        if (statement.predicateType.includes('slsa')) {
          const p = statement.predicate;
          assert.equal(p.buildDefinition.externalParameters.request.frontend, 'dockerfile.v0');
          assert.equal(p.buildDefinition.externalParameters.request.args['build-arg:GREETING'], 'hi');
          assert.deepEqual(p.buildDefinition.externalParameters.request.secrets, [{ id: 'tok' }]);
          assert.ok(p.buildDefinition.resolvedDependencies.some((d) => d.uri.startsWith(`pkg:docker/${base.replace(/:1$/, '')}@1?platform=`)));
          assert.ok(Date.parse(p.runDetails.metadata.startedOn) <= Date.parse(p.runDetails.metadata.finishedOn));
        } else {
          const doc: Sbom = statement.predicate;
          assert.equal(doc.spdxVersion, 'SPDX-2.3');
          const names = doc.packages.map((p) => `${p.name}@${p.versionInfo}`);
          assert.ok(names.includes(`busybox-static@${busyboxVersion}`), names.join(', '));
          assert.ok(names.some((n) => n.startsWith('tar@')), names.join(', '));
          assert.match(doc.packages[0].externalRefs[0].referenceLocator, /^pkg:deb\/debian\//);
        }
      }
    }
  }

  test('two platforms into a registry without the referrers API: one provenance and one SBOM per platform, in the sha256-<hex> tag index; the index holds exactly the two platforms', async () => {
    const tag = `${reg.host}/app/attested:1`;
    const t0 = performance.now();
    const { result } = await buildContext(appContext(), {
      tags: [tag], push: true, platforms: ['linux/amd64', 'linux/arm64'], buildArgs: ['GREETING=hi'], secrets: ['id=tok,src=secret.txt'], sourceDateEpoch: '0',
      attest: ['type=provenance,mode=max', 'type=sbom'],
    });
    const seconds = (performance.now() - t0) / 1000;
    assert.deepEqual(result.attestations, { provenance: 2, sbom: 2, referrers: ['tag-schema'] });
    const index = await raw(tag) as { manifests: Desc[] };
    assert.deepEqual(index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`), ['linux/amd64', 'linux/arm64']);
    await checkReferrers(reg.host, 'app/attested', index, async (subject) => {
      const fallback = await raw(`${reg.host}/app/attested:sha256-${subject.slice(7)}`) as { mediaType: string; manifests: Desc[] };
      assert.equal(fallback.mediaType, 'application/vnd.oci.image.index.v1+json');
      return fallback.manifests;
    });
    // Pushing the same again adds nothing to the tag index (the spec: a descriptor is listed once).
    const again = await buildContext(appContext(), {
      tags: [tag], push: true, platforms: ['linux/amd64', 'linux/arm64'], buildArgs: ['GREETING=hi'], secrets: ['id=tok,src=secret.txt'], attest: ['type=sbom'], sourceDateEpoch: '0',
    });
    assert.equal(again.result.digest, result.digest);
    const fallback = await raw(`${reg.host}/app/attested:sha256-${index.manifests[0].digest.slice(7)}`) as { manifests: Desc[] };
    // With SOURCE_DATE_EPOCH the SBOM is the same document, so the tag index still lists two.
    assert.equal(fallback.manifests.length, 2);
    // What attaching both costs on a warm two-platform push (printed, not asserted: too noisy here).
    const warm = async (attest: string[]) => {
      const t = performance.now();
      await buildContext(appContext(), { tags: [`${reg.host}/app/warm:1`], push: true, platforms: ['linux/amd64', 'linux/arm64'], sourceDateEpoch: '0', cacheDir, attest });
      return (performance.now() - t) / 1000;
    };
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-warm-'));
    await warm([]);
    const plainS = [await warm([]), await warm([]), await warm([])].sort()[1];
    const attestS = [await warm(['type=provenance,mode=max', 'type=sbom']), await warm(['type=provenance,mode=max', 'type=sbom']), await warm(['type=provenance,mode=max', 'type=sbom'])].sort()[1];
    console.log(`cold two-platform push with provenance + SBOM: ${seconds.toFixed(2)} s; warm median without: ${plainS.toFixed(3)} s, with both: ${attestS.toFixed(3)} s`);
  });

  test('through a registry with the referrers API: the OCI-Subject answer is honoured, no tag index is written, GET /referrers lists them', async () => {
    const tag = `${api.host}/app/viaapi:1`;
    const { result } = await buildContext(appContext(), {
      tags: [tag], push: true, platforms: ['linux/amd64', 'linux/arm64'], buildArgs: ['GREETING=hi'], secrets: ['id=tok,src=secret.txt'],
      provenance: 'mode=max', sbom: 'true',
    });
    assert.deepEqual(result.attestations?.referrers, ['referrers-api']);
    const index = await raw(tag) as { manifests: Desc[] };
    assert.equal(index.manifests.length, 2);
    const tags = await (await fetch(`${reg.url}/v2/app/viaapi/tags/list`)).json() as { tags: string[] };
    assert.deepEqual(tags.tags, ['1']);
    await checkReferrers(api.host, 'app/viaapi', index, async (subject) => {
      const res = await fetch(`http://${api.host}/v2/app/viaapi/referrers/${subject}`);
      return ((await res.json()) as { manifests: Desc[] }).manifests;
    });
  });

  test('SBOM of an image with Go binaries, a go.mod and dpkg file lists: golang packages from build info (GOPATH and module mode) and go.mod, package files with SHA1', { skip: existsMissing(['/usr/bin/umoci', '/var/lib/dpkg/info/busybox-static.list']) }, async () => {
    const gomod = 'module example.com/app\n\ngo 1.22\n\nrequire github.com/pkg/errors v0.9.1\n\nrequire (\n\tgolang.org/x/sys v0.1.0 // indirect\n\tgithub.com/old/name v1.0.0\n)\n\nreplace github.com/old/name => github.com/new/name v1.1.0\n';
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nCOPY status /var/lib/dpkg/status\nCOPY busybox-static.list /var/lib/dpkg/info/\nCOPY umoci /usr/bin/umoci\nCOPY app /usr/local/bin/app\nCOPY go.mod /src/go.mod\n`,
      status: dpkgRecord('busybox-static'), 'go.mod': gomod,
    });
    copyFileSync('/var/lib/dpkg/info/busybox-static.list', join(ctx, 'busybox-static.list'));
    copyFileSync('/usr/bin/umoci', join(ctx, 'umoci'));
    writeFileSync(join(ctx, 'app'), moduleModeBinary('/usr/bin/umoci', 'go1.22.4', [
      'path\texample.com/app/cmd/app', 'mod\texample.com/app\tv1.2.3\th1:AAAA', 'dep\tgithub.com/BurntSushi/toml\tv1.3.2\th1:BBBB',
      'dep\tgolang.org/x/sys\tv0.1.0\th1:CCCC', '=>\tgolang.org/x/sys\tv0.2.0\th1:DDDD', 'build\tGOOS=linux', '',
    ].join('\n')));
    const tag = `${reg.host}/app/gosbom:1`;
    const { result } = await buildContext(ctx, { tags: [tag], push: true, platforms: ['linux/amd64'], attest: ['type=sbom'], sourceDateEpoch: '0' });
    assert.equal(result.attestations?.sbom, 1);
    const refs = await raw(`${reg.host}/app/gosbom:sha256-${result.digest.slice(7)}`) as { manifests: Desc[] };
    assert.equal(refs.manifests.length, 1);
    const artifact = await raw(`${reg.host}/app/gosbom@${refs.manifests[0].digest}`) as { layers: Desc[] };
    const doc = (JSON.parse(await blob(reg.host, 'app/gosbom', artifact.layers[0].digest)) as { predicate: Sbom & { files: Array<{ fileName: string; SPDXID: string; checksums: Array<{ checksumValue: string }> }> } }).predicate;
    checkSpdx23(doc);
    const purls = doc.packages.map((p) => p.externalRefs[0].referenceLocator).sort();
    for (const want of [
      'pkg:golang/github.com/opencontainers/umoci/cmd/umoci', `pkg:golang/stdlib@${goVersionOf('/usr/bin/umoci').slice(2)}`, // Debian's umoci: GOPATH mode
      'pkg:golang/example.com/app@v1.2.3', 'pkg:golang/github.com/BurntSushi/toml@v1.3.2', 'pkg:golang/golang.org/x/sys@v0.2.0', 'pkg:golang/stdlib@1.22.4', // module mode
      'pkg:golang/github.com/pkg/errors@v0.9.1', 'pkg:golang/golang.org/x/sys@v0.1.0', 'pkg:golang/github.com/new/name@v1.1.0', // go.mod
    ]) assert.ok(purls.includes(want), `${want} in ${purls.join(', ')}`);
    const sources = (purl: string) => doc.packages.filter((p) => p.externalRefs[0].referenceLocator === purl).map((p) => (p as { sourceInfo?: string }).sourceInfo);
    assert.deepEqual(sources('pkg:golang/golang.org/x/sys@v0.1.0'), ['read from /src/go.mod (go.mod indirect requirement)']);
    assert.deepEqual(sources('pkg:golang/golang.org/x/sys@v0.2.0'), ['read from /usr/local/bin/app (Go build info (go1.22.4), dependency replacing golang.org/x/sys@v0.1.0)']);
    // busybox-static owns /bin/busybox (the fixture's copy of the host's file): one File, its SHA1.
    const bb = doc.packages.find((p) => p.name === 'busybox-static') as { hasFiles?: string[] } | undefined;
    const files = (bb?.hasFiles ?? []).map((id) => doc.files.find((f) => f.SPDXID === id));
    assert.deepEqual(files.map((f) => f?.fileName), ['/bin/busybox']);
    assert.equal(files[0]?.checksums[0].checksumValue, execFileSync('sha1sum', ['/bin/busybox'], { encoding: 'utf8' }).split(' ')[0]);
  });

  test('provenance mode=min leaves out build args and secret ids; the image digest is the one without attestations', async () => {
    const plain = await buildContext(appContext(), { tags: [`${reg.host}/app/min:1`], push: true, platforms: ['linux/amd64'], buildArgs: ['GREETING=hi'], sourceDateEpoch: '0' });
    const { result } = await buildContext(appContext(), {
      tags: [`${reg.host}/app/min:2`], push: true, platforms: ['linux/amd64'], buildArgs: ['GREETING=hi'], secrets: ['id=tok,src=secret.txt'], provenance: 'true', sourceDateEpoch: '0',
    });
    assert.equal(result.digest, plain.result.digest);
    const predicate = result.provenance?.['linux/amd64'] as { buildDefinition: { externalParameters: { request: Record<string, unknown> } } };
    const request = predicate.buildDefinition.externalParameters.request;
    assert.equal(request.secrets, undefined);
    assert.deepEqual(request.args, { platform: 'linux/amd64' });
    const refs = await raw(`${reg.host}/app/min:sha256-${result.digest.slice(7)}`) as { manifests: Desc[] };
    assert.equal(refs.manifests.length, 1);
  });
});

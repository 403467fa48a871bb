// The bundled action in a two-job matrix (one platform per job, main + post as the runner runs
// them) against the real registry: no merge job; the job that finishes second finds both
// platforms and writes the index, and its outputs carry the index digest. The platform
// manifests keep their provenance referrers, so the attestations stay reachable from the index.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryClient, listReferrers, parseReference } from '../../src/registry/index.ts';
import { MediaType, type Index } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { ensureBundle, newJob, runStep, type StepRun } from './helpers.ts';

const skip = registryMissing();
let reg: TestRegistry;
let client: RegistryClient;
before(async () => {
  if (skip) return;
  await ensureBundle();
  reg = await startRegistry();
  client = new RegistryClient();
});
after(async () => {
  await client?.close();
  await reg?.stop();
});

const explain = (r: StepRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

test('a two-job matrix: each job pushes its platform, the second one writes the index and outputs its digest', { skip, timeout: 180_000 }, async () => {
  const files = { Dockerfile: 'FROM scratch\nCOPY app.txt /\n', 'app.txt': 'matrix\n' };
  const tag = `${reg.host}/matrix/app:1`;
  const env = { GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1', GITHUB_REPOSITORY: 'o/r', GITHUB_SERVER_URL: 'https://github.com' };
  const inputs = (platform: string) => ({ platforms: platform, tags: tag, push: 'true', cache: 'false', 'merge-platforms': 'linux/amd64,linux/arm64', 'source-date-epoch': '0' });

  const amd = newJob(files);
  const amdMain = await runStep('main', amd, { inputs: inputs('linux/amd64'), env });
  assert.equal(amdMain.code, 0, explain(amdMain));
  assert.match(amdMain.stdout, /merge 4242-1: still missing linux\/arm64/);
  assert.equal(await client.headManifest(parseReference(tag)), undefined, 'no tag before every platform is in');
  assert.equal((await runStep('post', amd, { env })).code, 0);

  const arm = newJob(files);
  const armMain = await runStep('main', arm, { inputs: inputs('linux/arm64'), env });
  assert.equal(armMain.code, 0, explain(armMain));
  assert.equal((await runStep('post', arm, { env })).code, 0);

  const top = await client.getManifest(parseReference(tag));
  assert.equal(top.mediaType, MediaType.ociIndex);
  assert.equal(armMain.outputs.digest, top.digest, 'the second job outputs the index digest');
  assert.equal(armMain.outputs.imageid, top.digest);
  assert.equal(JSON.parse(armMain.outputs.metadata)['containerimage.digest'], top.digest);
  assert.equal(JSON.parse(armMain.outputs.metadata)['containerimage.descriptor'].mediaType, MediaType.ociIndex);
  const index = JSON.parse(top.bytes.toString()) as Index;
  const platformDigests = { ...JSON.parse(amdMain.outputs['platform-digests']), ...JSON.parse(armMain.outputs['platform-digests']) } as Record<string, string>;
  assert.deepEqual(Object.fromEntries(index.manifests.map((m) => [`${m.platform!.os}/${m.platform!.architecture}`, m.digest])), platformDigests);
  assert.equal(amdMain.outputs.digest, platformDigests['linux/amd64'], 'the first job outputs its platform manifest');
  // Each platform's provenance is a referrer of the manifest the index lists.
  for (const m of index.manifests) {
    const refs = await listReferrers(client, parseReference(`${reg.host}/matrix/app`), m.digest);
    assert.ok(refs.some((r) => r.artifactType === 'application/vnd.in-toto+json'), `${m.platform!.architecture}: no referrer for ${m.digest}`);
  }
});

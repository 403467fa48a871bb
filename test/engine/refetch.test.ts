// A base layer whose bytes are flipped on the way is fetched again (bounded); corrupt bytes never
// reach the cache, and a layer that stays corrupt fails the build with one clear error.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fixturesMissing } from '../harness/fixtures.ts';
import { busyboxBehindProxy } from '../harness/proxy.ts';
import { registryMissing } from '../harness/registry.ts';
import { buildContext, makeContext, runMissing } from './helpers.ts';

describe('base layers fetched again after a flipped byte', { skip: registryMissing() ?? fixturesMissing() ?? runMissing() }, () => {
  const fixture = busyboxBehindProxy();

  /** The digest of the amd64 image's layer, read from the registry's API. */
  const layerDigest = async (): Promise<string> => {
    const get = async (path: string) => (await fetch(`${fixture.registry.url}${path}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } })).json();
    const index = await get('/v2/library/busybox/manifests/1') as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
    const amd64 = index.manifests.find((m) => m.platform.architecture === 'amd64')!;
    return ((await get(`/v2/library/busybox/manifests/${amd64.digest}`)) as { layers: Array<{ digest: string }> }).layers[0].digest;
  };

  test('one corrupt download: fetched again, the build succeeds', async () => {
    const layer = await layerDigest();
    const layerGets = () => fixture.proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${layer}`)).length;
    fixture.proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), times: 1, fault: { corruptBody: true } });
    const before = fixture.proxy.requests.length;
    const { result } = await buildContext(makeContext({ Dockerfile: `FROM ${fixture.proxy.host}/library/busybox:1\nRUN echo ok > /ok\n` }));
    assert.equal(result.steps.run, 1);
    assert.ok(fixture.proxy.requests.slice(before).some((r) => r.fault !== undefined), 'the fault was hit');
    assert.ok(layerGets() >= 2, 'the blob was fetched again');
  });

  test('a layer that stays corrupt: one clear error, nothing stored', async () => {
    fixture.proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${await layerDigest()}$`), times: 1000, fault: { corruptBody: true } });
    await assert.rejects(buildContext(makeContext({ Dockerfile: `FROM ${fixture.proxy.host}/library/busybox:1\nRUN echo again > /again\n` })), /digest|does not match|verification/);
  });
});

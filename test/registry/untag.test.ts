// Removing a tag against the real CNCF registry (distribution 2.8, which deletes manifests only by
// digest): the tag goes, another tag of the same manifest and the manifest itself stay; with
// deletion disabled nothing changes and untag says so.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryClient, parseReference, untag } from '../../src/registry/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';

const skip = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
let locked: TestRegistry;
let client: RegistryClient;
before(async () => {
  if (skip) return;
  [reg, locked] = await Promise.all([startRegistry(), startRegistry({ deleteEnabled: false })]);
  client = new RegistryClient();
});
after(async () => {
  await client?.close();
  await Promise.all([reg?.stop(), locked?.stop()]);
});

const ref = (r: TestRegistry, s: string) => parseReference(`${r.host}/${s}`);

test('untag removes one tag; the other tag and the manifest stay', { skip }, async () => {
  const f = await pushFixture(reg, 'amd64', 'untag/app:one');
  await client.putManifest(ref(reg, 'untag/app:two'), (await client.getManifest(ref(reg, 'untag/app:one'))).bytes, (await client.getManifest(ref(reg, 'untag/app:one'))).mediaType);
  assert.equal(await untag(client, ref(reg, 'untag/app:one')), true);
  assert.equal(await client.headManifest(ref(reg, 'untag/app:one')), undefined, 'the tag is gone');
  assert.equal(await client.headManifest(ref(reg, 'untag/app:two')), f.digest, 'the other tag stays');
  assert.equal(await client.headManifest(ref(reg, `untag/app@${f.digest}`)), f.digest, 'the manifest stays');
  const res = await fetch(`${reg.url}/v2/untag/app/tags/list`);
  assert.deepEqual(((await res.json()) as { tags: string[] }).tags, ['two']);
});

test('a registry that allows no deletion keeps the tag, and untag says false', { skip }, async () => {
  const f = await pushFixture(locked, 'amd64', 'untag/app:one');
  locked.clearLog();
  assert.equal(await untag(client, ref(locked, 'untag/app:one')), false);
  const probePut = (log: Array<{ method: string; path: string }>) => log.filter((e) => e.method === 'PUT' && e.path.includes('/manifests/')).map((e) => e.path);
  const first = probePut(await locked.settledLog());
  assert.equal(await client.headManifest(ref(locked, 'untag/app:one')), f.digest);
  await client.putManifest(ref(locked, 'untag/app:two'), (await client.getManifest(ref(locked, 'untag/app:one'))).bytes, (await client.getManifest(ref(locked, 'untag/app:one'))).mediaType);
  locked.clearLog();
  assert.equal(await untag(client, ref(locked, 'untag/app:two')), false);
  // The probe is the same manifest for every tag of the repository: nothing new is left behind.
  const second = probePut(await locked.settledLog());
  assert.equal(second.length, 1);
  assert.deepEqual(second, first, 'the same probe manifest both times');
});

// Credentials from docker credential helpers (credHelpers / credsStore), as `docker login` with a
// helper leaves them: real helper programs (small scripts of ours) on PATH, and the real registry.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseReference, RegistryClient } from '../../src/registry/index.ts';
import { credentialsFromDockerConfig } from '../../src/registry/auth.ts';
import { parsePlatform } from '../../src/oci/index.ts';
import { registryMissing, startRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';

const bin = mkdtempSync(join(tmpdir(), 'slipway-credhelpers-'));
const savedPath = process.env.PATH;

/** A helper that answers `get` for SERVER with the given JSON, else "credentials not found". */
function helper(name: string, server: string, answer: object): void {
  const file = join(bin, `docker-credential-${name}`);
  writeFileSync(file, `#!/bin/sh\n[ "$1" = get ] || exit 2\nread -r server\nif [ "$server" = "${server}" ]; then echo '${JSON.stringify(answer)}'; else echo "credentials not found in native keychain"; exit 1; fi\n`);
  chmodSync(file, 0o755);
}

function config(doc: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-dockercfg-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify(doc));
  return join(dir, 'config.json');
}

before(() => { process.env.PATH = `${bin}:${savedPath}`; });
after(() => { process.env.PATH = savedPath; });

test('credHelpers: the helper named for the registry answers; "not found" means anonymous', async () => {
  helper('fake', 'registry.example.com', { Username: 'ci', Secret: 'pw' });
  helper('tok', 'ghcr.io', { Username: '<token>', Secret: 'refresh-token' });
  const path = config({ credHelpers: { 'registry.example.com': 'fake', 'ghcr.io': 'tok', 'other.example.com': 'fake' } });
  assert.deepEqual(await credentialsFromDockerConfig(path, 'registry.example.com'), { username: 'ci', password: 'pw' });
  assert.deepEqual(await credentialsFromDockerConfig(path, 'ghcr.io'), { identityToken: 'refresh-token' });
  assert.equal(await credentialsFromDockerConfig(path, 'other.example.com'), undefined);
});

test('credsStore serves every registry; a missing helper program is one clear error', async () => {
  helper('store', 'quay.io', { Username: 'robot', Secret: 's' });
  assert.deepEqual(await credentialsFromDockerConfig(config({ credsStore: 'store' }), 'quay.io'), { username: 'robot', password: 's' });
  await assert.rejects(credentialsFromDockerConfig(config({ credsStore: 'absent' }), 'quay.io'), /credential helper docker-credential-absent could not be run/);
});

test('a credential helper logs in to a real registry with basic auth', { skip: registryMissing() ?? fixturesMissing() }, async () => {
  const reg = await startRegistry({ auth: 'basic' });
  const client = new RegistryClient({ dockerConfigPath: config({ credHelpers: { [reg.host]: 'realreg' } }) });
  try {
    helper('realreg', reg.host, { Username: reg.username, Secret: reg.password });
    const fx = await pushFixture(reg, 'amd64', 'helped/img:1');
    const img = await client.resolveImage(parseReference(fx.ref), parsePlatform('linux/amd64'));
    assert.equal(img.config.architecture, 'amd64');
    const anonymous = new RegistryClient({});
    await assert.rejects(anonymous.resolveImage(parseReference(fx.ref), parsePlatform('linux/amd64')), /requires a login/);
    await anonymous.close();
  } finally {
    await client.close();
    await reg.stop();
  }
});

// Mirror configuration as users write it, and where a pull goes for each reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReference } from '../../src/registry/index.ts';
import { insecureMirrorHosts, parseBuildkitdToml, parseDaemonJson, parseMirrorFlag, parseRegistriesConf, pullSources } from '../../src/registry/mirrors.ts';
import { UserError } from '../../src/errors.ts';

const sources = (rules: Parameters<typeof pullSources>[0], ref: string) => pullSources(rules, parseReference(ref)).map((r) => r.toString());

test('registries.conf: mirrors in order, then upstream; longest prefix wins; digest-only mirrors; a rewrite replaces upstream', () => {
  const rules = parseRegistriesConf(`
unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "docker.io"
[[registry.mirror]]
location = "mirror-a.example:5000"
insecure = true
[[registry.mirror]]
location = "pinned.example"
pull-from-mirror = "digest-only"

[[registry]]
prefix = "docker.io/team"
location = "internal.example/hub-team"

[[registry]]
location = "quay.io"
`, 'registries.conf');
  assert.deepEqual(sources(rules, 'busybox:1'), ['mirror-a.example:5000/library/busybox:1', 'docker.io/library/busybox:1']);
  const pinned = `busybox@sha256:${'a'.repeat(64)}`;
  assert.deepEqual(sources(rules, pinned).map((s) => s.split('@')[0]), ['mirror-a.example:5000/library/busybox', 'pinned.example/library/busybox', 'docker.io/library/busybox']);
  assert.deepEqual(sources(rules, 'team/app:2'), ['internal.example/hub-team/app:2'], 'a rewritten prefix never reaches docker.io');
  assert.deepEqual(sources(rules, 'quay.io/x/y:1'), ['quay.io/x/y:1'], 'a registry without mirrors is pulled as it is');
  assert.deepEqual(insecureMirrorHosts(rules), ['mirror-a.example:5000']);
  assert.throws(() => parseRegistriesConf('[[registry]\nprefix=', 'f.conf'), (e: unknown) => e instanceof UserError && /^f\.conf: not valid TOML/.test(e.message));
  // Comments and blank lines only (Debian's file) are no rules; a table after comments is read; an
  // indented bad line is still refused.
  assert.deepEqual(parseRegistriesConf('# unqualified-search-registries = ["x"]\n\n  # [[registry]]\r\n\t\n', 'empty.conf'), []);
  assert.deepEqual(sources(parseRegistriesConf('# mirrors\n  [[registry]]\nlocation = "docker.io"\n[[registry.mirror]]\nlocation = "m.example"\n', 'c.conf'), 'busybox:1')[0], 'm.example/library/busybox:1');
  assert.throws(() => parseRegistriesConf('# a comment\n  prefix=\n', 'bad.conf'), (e: unknown) => e instanceof UserError && /^bad\.conf: not valid TOML/.test(e.message));
});

test('daemon.json mirrors are Docker Hub\'s; buildkitd.toml per host, with http from the mirror\'s own table; the flag', () => {
  const daemon = parseDaemonJson('{"registry-mirrors": ["https://mirror.gcr.io", "http://10.0.0.1:5000/"]}', 'daemon.json');
  assert.deepEqual(sources(daemon, 'alpine'), ['mirror.gcr.io/library/alpine:latest', '10.0.0.1:5000/library/alpine:latest', 'docker.io/library/alpine:latest']);
  assert.deepEqual(insecureMirrorHosts(daemon), ['10.0.0.1:5000']);
  assert.deepEqual(sources(daemon, 'ghcr.io/o/app:1'), ['ghcr.io/o/app:1']);
  const bk = parseBuildkitdToml('[registry."docker.io"]\nmirrors = ["hub.local:5000"]\n[registry."hub.local:5000"]\nhttp = true\n', 'buildkitd.toml');
  assert.deepEqual(sources(bk, 'docker.io/library/node:24'), ['hub.local:5000/library/node:24', 'docker.io/library/node:24']);
  assert.deepEqual(insecureMirrorHosts(bk), ['hub.local:5000']);
  const gitlab = parseMirrorFlag('docker.io=gitlab.example.com:443/group/dependency_proxy/containers');
  assert.deepEqual(sources([gitlab], 'node:24'), ['gitlab.example.com:443/group/dependency_proxy/containers/library/node:24', 'docker.io/library/node:24']);
  assert.throws(() => parseMirrorFlag('mirror.example'), /invalid registry mirror "mirror.example": expected REGISTRY=MIRROR/);
  assert.throws(() => parseDaemonJson('{"registry-mirrors": "x"}', 'daemon.json'), /"registry-mirrors" must be a list/);
});

// The `build-contexts` input: one NAME=VALUE per line (commas kept, as build-push-action reads it),
// directories relative to the workspace, through the same request the CLI's --build-context makes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { settingsFromInputs } from '../../src/action/inputs.ts';
import { requestHasRun } from '../../src/action/privilege.ts';
import { build, quietProgress } from '../../src/engine/index.ts';

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'slipway-action-ctx-'));
  writeFileSync(join(ws, 'Dockerfile'), 'FROM scratch\nCOPY --from=assets a,b.txt /\n');
  mkdirSync(join(ws, 'assets'));
  writeFileSync(join(ws, 'assets', 'a,b.txt'), 'asset\n');
  return ws;
}

test('build-contexts: one per line, # comments skipped, directories relative to the workspace, names normalised', () => {
  const ws = workspace();
  const inputs: Record<string, string> = {
    'build-contexts': '# named contexts\nassets=assets\n  docker.io/library/alpine:latest=docker-image://registry.example.com/mirror/alpine:3.20,with-comma\n',
  };
  assert.throws(() => settingsFromInputs((n) => inputs[n] ?? '', {}, ws), /docker-image:\/\/registry.example.com\/mirror\/alpine:3.20,with-comma/, 'a comma does not split the line');
  inputs['build-contexts'] = '# named contexts\nassets=assets\n  docker.io/library/alpine:latest=docker-image://registry.example.com/mirror/alpine:3.20\n';
  const { request } = settingsFromInputs((n) => inputs[n] ?? '', {}, ws);
  assert.deepEqual(request.namedContexts, [
    { name: 'assets', value: 'assets', source: { kind: 'local', dir: join(ws, 'assets') } },
    { name: 'alpine', value: 'docker-image://registry.example.com/mirror/alpine:3.20', source: { kind: 'image', ref: 'registry.example.com/mirror/alpine:3.20' } },
  ]);
  assert.equal(settingsFromInputs(() => '', {}, ws).request.namedContexts, undefined, 'no input, no contexts');
});

test('build-contexts: a bad line fails the step before the build, naming the value', () => {
  const ws = workspace();
  assert.throws(() => settingsFromInputs((n) => (n === 'build-contexts' ? 'assets=missing-dir' : ''), {}, ws), /--build-context assets=missing-dir: directory .*missing-dir does not exist/);
  assert.throws(() => settingsFromInputs((n) => (n === 'build-contexts' ? 'assets=s3://bucket/x' : ''), {}, ws), /unknown scheme "s3:\/\/"/);
});

test('build-contexts: the request builds, COPY --from=NAME reading the workspace directory', async () => {
  const ws = workspace();
  const { request } = settingsFromInputs((n) => ({ 'build-contexts': 'assets=assets', outputs: 'type=oci,dest=out/img.tar', cache: 'false' } as Record<string, string>)[n] ?? '', { RUNNER_TEMP: mkdtempSync(join(tmpdir(), 'slipway-runner-')) }, ws);
  const result = await build(request, { progress: quietProgress(() => undefined) });
  assert.equal(result.steps.run, 1);
  assert.equal(result.written.length, 1);
});

test('a RUN in a stage a named context replaces needs no root: the action does not re-run itself through sudo for it', () => {
  const ws = workspace();
  writeFileSync(join(ws, 'Dockerfile'), 'FROM busybox AS tools\nRUN echo hi\nFROM scratch\nCOPY --from=tools /bin/sh /sh\n');
  const request = (contexts: string) => settingsFromInputs((n) => (n === 'build-contexts' ? contexts : ''), {}, ws).request;
  assert.equal(requestHasRun(request('')), true);
  assert.equal(requestHasRun(request('tools=docker-image://busybox:1')), false);
});

// Dockerfile frontend 1.10–1.28 syntax, built end to end through the engine: TARGETSTAGE and the
// OS-version args, symbolic --chmod, --chown=user:, ADD --unpack (local and URL), the `# syntax=`
// and BUILDKIT_SYNTAX warnings, BUILDKIT_DOCKERFILE_CHECK, and RUN --device / RUN --security=insecure without their entitlements.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildContext, makeContext, run } from './helpers.ts';

async function build(ctx: string, buildArgs: string[] = []): Promise<{ config: { config: { Labels?: Record<string, string> } }; layers: string[][]; owners: string[][]; log: string[] }> {
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-syntax-')), 'image.tar');
  const { log } = await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '0', buildArgs });
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
  const work = mkdtempSync(join(tmpdir(), 'slipway-syntax-x-'));
  await run('tar', ['-xf', out, '-C', work]);
  const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`]);
  const layers: string[][] = [];
  const owners: string[][] = [];
  for (const l of JSON.parse(raw).layers) {
    const { stdout: list } = await run('tar', ['--numeric-owner', '-tvzf', join(work, 'blobs', ...l.digest.split(':'))]);
    const fields = list.split('\n').filter(Boolean).map((line) => line.split(/\s+/));
    layers.push(fields.map((f) => `${f[0]} ${f.slice(5).join(' ').replace(/\/$/, '')}`));
    owners.push(fields.map((f) => `${f[1]} ${f.slice(5).join(' ').replace(/\/$/, '')}`));
  }
  return { config: JSON.parse(stdout), layers, owners, log };
}

test('TARGETSTAGE is the stage built (--target, else the last stage name, else "default"); TARGETOSVERSION is declared', async () => {
  const df = 'FROM scratch AS first\nARG TARGETSTAGE\nLABEL s=$TARGETSTAGE\nFROM scratch AS Last\nARG TARGETSTAGE TARGETOSVERSION\nLABEL s=$TARGETSTAGE v=x${TARGETOSVERSION}x\n';
  const ctx = makeContext({ Dockerfile: df });
  assert.deepEqual((await build(ctx)).config.config.Labels, { s: 'last', v: 'xx' });
  const out = join(ctx, 'first.tar');
  await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], target: 'first' });
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
  assert.deepEqual(JSON.parse(stdout).config.Labels, { s: 'first' });
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nARG TARGETSTAGE\nLABEL s=$TARGETSTAGE\n');
  assert.deepEqual((await build(ctx)).config.config.Labels, { s: 'default' });
});

test('COPY --chmod takes symbolic modes (u=rwx,go=rx; +x); a numeric non-octal one is the octal error', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY --chmod=u=rwx,go=rx a /s/\nCOPY --chmod=+x a /x/\n', a: 'a' });
  const { layers } = await build(ctx);
  assert.deepEqual(layers, [['drwxr-xr-x s', '-rwxr-xr-x s/a'], ['drwxr-xr-x x', '-rwxr-xr-x x/a']]);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY --chmod=0999 a /s/\n');
  await assert.rejects(build(ctx), /invalid chmod parameter: '0999'/);
});

test('COPY/ADD --chown=user: (frontend 1.28) is the user with its default group: the passwd gid, a bare uid its own number; :group is uid 0', async () => {
  const ctx = makeContext({
    Dockerfile: 'FROM scratch\nCOPY etc /etc\nCOPY --chown=app: a /n/\nADD --chown=1005: a /u/\nCOPY --link --chown=1001:1002 a /l/\nCOPY --chown=app:staff a /g/\n',
    'etc/passwd': 'root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n',
    'etc/group': 'root:x:0:\napp:x:77:\nstaff:x:50:\n', a: 'a',
  });
  const { owners } = await build(ctx);
  // Not the group that shares the user's name (77): the login group from /etc/passwd, as chown(1);
  // the created target directory takes the same owner.
  assert.deepEqual(owners.slice(1), [['1001/1002 n', '1001/1002 n/a'], ['1005/1005 u', '1005/1005 u/a'], ['1001/1002 l', '1001/1002 l/a'], ['1001/50 g', '1001/50 g/a']]);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY etc /etc\nCOPY --chown=nobody: a /n/\n');
  await assert.rejects(build(ctx), /Dockerfile:3.*unable to find user nobody/s);
  // An empty user is uid 0, as BuildKit's llb.WithUser reads it.
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY etc /etc\nCOPY --chown=:staff a /s/\nCOPY --chown=: a /e/\n');
  assert.deepEqual((await build(ctx)).owners.slice(1), [['0/50 s', '0/50 s/a'], ['0/0 e', '0/0 e/a']]);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY --chown=a:b:c a /n/\n');
  await assert.rejects(build(ctx), /invalid --chown value "a:b:c"/);
  // 1.28 (moby/buildkit#7134): --link with --chown by name is refused when the Dockerfile is read;
  // numbers and root pass (above).
  for (const chown of ['app:', 'app:staff', '1001:staff']) {
    writeFileSync(join(ctx, 'Dockerfile'), `FROM scratch\nCOPY etc /etc\nCOPY --link --chown=${chown} a /l/\n`);
    await assert.rejects(build(ctx), /Dockerfile:3.*COPY --link cannot use --chown=.*only numeric ids \(or root\) work/s);
  }
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY --link --chown=root:0 a /l/\n');
  assert.deepEqual((await build(ctx)).owners, [['0/0 l', '0/0 l/a']]);
});

test('ADD --unpack=false copies a local archive as it is; the default unpacks it', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nADD --unpack=false a.tar /keep/\nADD a.tar /x/\n', 'in/f': 'f' });
  await run('tar', ['-cf', join(ctx, 'a.tar'), '-C', join(ctx, 'in'), 'f']);
  const { layers } = await build(ctx);
  assert.deepEqual(layers, [['drwxr-xr-x keep', '-rw-r--r-- keep/a.tar'], ['drwxr-xr-x x', '-rw-r--r-- x/f']]);
});

test('ADD --unpack=true <url> unpacks a downloaded archive; without it the download is kept as a file', async (t) => {
  const ctx = makeContext({ Dockerfile: '', 'in/f': 'f' });
  await run('tar', ['-czf', join(ctx, 'a.tar.gz'), '-C', join(ctx, 'in'), 'f']);
  const body = readFileSync(join(ctx, 'a.tar.gz'));
  const server = createServer((_req, res) => { res.writeHead(200, { 'content-length': body.length }); res.end(body); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/a.tar.gz`;
  writeFileSync(join(ctx, 'Dockerfile'), `FROM scratch\nADD --unpack=true ${url} /x/\nADD ${url} /y/\n`);
  assert.deepEqual((await build(ctx)).layers, [['drwxr-xr-x x', '-rw-r--r-- x/f'], ['drwxr-xr-x y', '-rw------- y/a.tar.gz']]);
});

test('ADD unpacks a zstd-compressed archive', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nADD a.tar.zst /x/\n', 'in/f': 'f' });
  await run('tar', ['-cf', join(ctx, 'a.tar'), '-C', join(ctx, 'in'), 'f']);
  await run('zstd', ['-q', join(ctx, 'a.tar'), '-o', join(ctx, 'a.tar.zst')]);
  assert.deepEqual((await build(ctx)).layers, [['drwxr-xr-x x', '-rw-r--r-- x/f']]);
});

test('# syntax= naming another frontend image warns once, naming it; docker/dockerfile does not', async () => {
  const ctx = makeContext({ Dockerfile: '# syntax=example.com/my/frontend:2\nFROM scratch\nLABEL a=b\n' });
  const warns = (await build(ctx)).log.filter((l) => l.startsWith('WARN'));
  assert.equal(warns.length, 1);
  assert.match(warns[0], /# syntax=example\.com\/my\/frontend:2 names a frontend image that slipway cannot run/);
  writeFileSync(join(ctx, 'Dockerfile'), '# syntax=docker/dockerfile:1.7\nFROM scratch\nLABEL a=b\n');
  assert.deepEqual((await build(ctx)).log.filter((l) => l.startsWith('WARN')), []);
});

test('--build-arg BUILDKIT_SYNTAX picks the frontend instead of # syntax=: another image warns once, naming it', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nLABEL a=b\n' });
  const warns = async (args: string[]) => (await build(ctx, args)).log.filter((l) => l.startsWith('WARN'));
  assert.deepEqual(await warns(['BUILDKIT_SYNTAX=example.com/fe:1 --opt']),
    ['WARN --build-arg BUILDKIT_SYNTAX=example.com/fe:1 names a frontend image that slipway cannot run; the Dockerfile is read as docker/dockerfile:1']);
  writeFileSync(join(ctx, 'Dockerfile'), '# syntax=example.com/my/frontend:2\nFROM scratch\nLABEL a=b\n');
  assert.deepEqual(await warns(['BUILDKIT_SYNTAX=docker/dockerfile:1.10']), [], 'the build arg wins over the directive; it is no unused build arg');
  assert.deepEqual(await warns(['BUILDKIT_SYNTAX=dockerfile.v0']), [], 'dockerfile.v0: the built-in frontend, # syntax= ignored');
});

test('--build-arg BUILDKIT_DOCKERFILE_CHECK configures the build checks in place of # check=', async () => {
  const ctx = makeContext({ Dockerfile: '# check=skip=all\nFROM scratch\nENV A b\n' });
  assert.deepEqual((await build(ctx)).log.filter((l) => l.startsWith('WARN')), []);
  assert.deepEqual((await build(ctx, ['BUILDKIT_DOCKERFILE_CHECK=skip=JSONArgsRecommended'])).log.filter((l) => l.startsWith('WARN')),
    ['WARN LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line 3)']);
  await assert.rejects(build(ctx, ['BUILDKIT_DOCKERFILE_CHECK=error=true']), /lint violation found for rules: LegacyKeyValueFormat/);
  await assert.rejects(build(ctx, ['BUILDKIT_DOCKERFILE_CHECK=loud']), /failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option "loud"/);
  // A malformed directive fails the build too, as in BuildKit (not only --check).
  writeFileSync(join(ctx, 'Dockerfile'), '# check=loud=yes\nFROM scratch\n');
  await assert.rejects(build(ctx), /failed to parse check options: invalid check option "loud"/);
});

test('RUN --security=insecure without --allow security.insecure, and malformed RUN --device values, fail at their line', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nRUN --security=insecure true\n' });
  await assert.rejects(build(ctx), (e: Error & { hint?: string }) => /Dockerfile:2: security\.insecure is not allowed/.test(e.message) && /--allow security\.insecure/.test(e.hint ?? ''));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nRUN --device=example.com/a=b,extra true\n');
  await assert.rejects(build(ctx), /Dockerfile:2.*invalid field 'extra' must be a key=value pair/s);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nRUN --device=example.com/a=b,requird=true true\n');
  await assert.rejects(build(ctx), /unexpected key 'requird' in 'requird=true' \(did you mean required\?\)/);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nRUN --device=example.com/a=b,required=maybe true\n');
  await assert.rejects(build(ctx), /invalid value for required: maybe/);
});

test('WORKDIR with SOURCE_DATE_EPOCH: the directories it creates carry the epoch as their mtime (frontend 1.16)', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nWORKDIR /srv/app\n' });
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-wd-')), 'image.tar');
  await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '1234567890' });
  const work = mkdtempSync(join(tmpdir(), 'slipway-wd-x-'));
  await run('tar', ['-xf', out, '-C', work]);
  const { stdout: raw } = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`]);
  const layer = join(work, 'blobs', ...JSON.parse(raw).layers[0].digest.split(':'));
  const { stdout } = await run('tar', ['--full-time', '--utc', '-tvzf', layer]);
  const lines = stdout.trim().split('\n');
  assert.equal(lines.length, 2, stdout);
  for (const l of lines) assert.match(l, /2009-02-13 23:31:30 srv(\/app)?\/$/);
});

// slipway's in-process agent against OpenSSH's own tools: keys made by ssh-keygen (OpenSSH and PEM
// formats), listed by ssh-add -l and signing for `ssh-keygen -Y sign`, whose signature
// `ssh-keygen -Y check-novalidate` verifies; and the `--ssh` values a user can get wrong.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parsePrivateKey, serveAgent } from '../../src/ssh/index.ts';
import { makeBuildRequest } from '../../src/request/index.ts';
import { runCliProcess } from '../harness/cli.ts';

const run = promisify(execFile);
const missing = spawnSync('sh', ['-c', 'command -v ssh-keygen && command -v ssh-add']).status !== 0 ? 'openssh-client is not installed' : undefined;

describe('in-process ssh agent', { skip: missing }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'slipway-agent-'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const kinds: Array<[string, string[]]> = [
    ['ed25519', ['-t', 'ed25519']],
    ['rsa', ['-t', 'rsa', '-b', '2048']],
    ['ecdsa-256', ['-t', 'ecdsa', '-b', '256']],
    ['ecdsa-384', ['-t', 'ecdsa', '-b', '384']],
    ['ecdsa-521', ['-t', 'ecdsa', '-b', '521']],
    ['rsa-pem', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']],
    ['ecdsa-pkcs8', ['-t', 'ecdsa', '-b', '256', '-m', 'PKCS8']],
  ];
  for (const [name, args] of kinds) {
    test(`${name}: ssh-add -l lists it and ssh-keygen -Y verifies what it signed`, async () => {
      const key = join(dir, name);
      await run('ssh-keygen', ['-q', ...args, '-N', '', '-C', `c-${name}`, '-f', key]);
      const agent = await serveAgent({ keys: [parsePrivateKey(readFileSync(key, 'utf8'), key)] }, join(dir, `${name}.sock`), { mode: 0o600, uid: 0, gid: 0 });
      try {
        const env = { ...process.env, SSH_AUTH_SOCK: agent.path };
        const printed = (await run('ssh-keygen', ['-lf', `${key}.pub`])).stdout.split(' ')[1];
        const listed = (await run('ssh-add', ['-l'], { env })).stdout;
        assert.ok(listed.includes(printed), `ssh-add -l: ${listed}`);
        assert.equal((await run('ssh-add', ['-L'], { env })).stdout.split(' ').slice(0, 2).join(' '), readFileSync(`${key}.pub`, 'utf8').split(' ').slice(0, 2).join(' '));
        // -Y sign with a public key asks the agent for the signature (RSA asks for rsa-sha2-512).
        const data = join(dir, `${name}.txt`);
        writeFileSync(data, `signed by ${name}\n`);
        await run('ssh-keygen', ['-q', '-Y', 'sign', '-n', 'slipway', '-f', `${key}.pub`, data], { env });
        const check = spawnSync('ssh-keygen', ['-Y', 'check-novalidate', '-n', 'slipway', '-f', `${key}.pub`, '-s', `${data}.sig`], { input: readFileSync(data), encoding: 'utf8' });
        assert.equal(check.status, 0, check.stderr + check.stdout);
        // The agent holds keys for signing only: adding or removing is refused.
        await assert.rejects(run('ssh-add', ['-D'], { env }), /agent refused operation|Failed to remove/);
      } finally {
        await agent.close();
      }
    });
  }

  test('a malformed or oversized message gets SSH_AGENT_FAILURE or a closed connection, never a crash', async () => {
    const agent = await serveAgent({ keys: [] }, join(dir, 'bad.sock'), { mode: 0o600, uid: 0, gid: 0 });
    try {
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const c = connect(agent.path);
        const chunks: Buffer[] = [];
        c.on('data', (d) => { chunks.push(d); if (Buffer.concat(chunks).length >= 5) { c.end(); resolve(Buffer.concat(chunks)); } });
        c.on('error', reject);
        c.write(Buffer.from([0, 0, 0, 3, 13, 0, 0])); // a SIGN_REQUEST cut short
      });
      assert.deepEqual([...reply], [0, 0, 0, 1, 5]);
      const closed = await new Promise<boolean>((resolve) => {
        const c = connect(agent.path);
        c.on('close', () => resolve(true));
        c.on('error', () => undefined);
        c.write(Buffer.from([0x7f, 0, 0, 0, 11]));
      });
      assert.ok(closed);
    } finally {
      await agent.close();
    }
  });

  test('a socket path longer than a unix socket may have is one clear error', async () => {
    await assert.rejects(serveAgent({ keys: [] }, join(dir, 'x'.repeat(120)), { mode: 0o600, uid: 0, gid: 0 }), /a unix socket path may be 107 bytes at most/);
  });

  test('a passphrase-protected key is refused with the way out (an agent)', async () => {
    const key = join(dir, 'locked');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'pass phrase', '-f', key]);
    assert.throws(() => makeBuildRequest({ context: '.', cwd: dir, env: {}, ssh: [`default=${key}`] }), (e: Error & { hint?: string }) => {
      assert.match(e.message, /ssh key .*locked is protected by a passphrase/);
      assert.match(e.hint ?? '', /ssh-add .*locked/);
      return true;
    });
  });
});

describe('--ssh values', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'slipway-sshflag-'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(dir, 'notakey'), 'hello\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const request = (ssh: string[], env: Record<string, string> = {}) => () => makeBuildRequest({ context: '.', cwd: dir, env, ssh });

  test('each bad value is one clear error', () => {
    assert.throws(request(['default']), /--ssh default: SSH_AUTH_SOCK is not set/);
    assert.throws(request(['a=b=c,']), /--ssh a: .*b=c does not exist/);
    assert.throws(request(['=x']), /invalid --ssh "=x": expected default, ID, ID=SOCKET or ID=KEYFILE/);
    assert.throws(request(['x=notakey', 'x=notakey']), /is given twice|not a private key/);
    assert.throws(request(['x=notakey']), /ssh key .*notakey is not a private key slipway can read/);
    assert.throws(request(['default'], { SSH_AUTH_SOCK: join(dir, 'gone.sock') }), /--ssh default: .*gone\.sock does not exist/);
  });

  test('slipway build --ssh reaches the request: without an agent it says so and exits 1', async () => {
    const env: NodeJS.ProcessEnv = { SSH_AUTH_SOCK: '' };
    const r = await runCliProcess(['build', '--ssh', 'default', '--output', `type=oci,dest=${join(dir, 'o.tar')}`, dir], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--ssh default: SSH_AUTH_SOCK is not set/);
  });
});

// Private key files as an in-process agent holds them: OpenSSH's own format (`ssh-keygen`'s default,
// unencrypted) and PEM (PKCS#1, PKCS#8, SEC1), for Ed25519, RSA and ECDSA keys. Each becomes a
// KeyObject of node:crypto plus its public key blob, and signs as the agent protocol asks.
import { createPrivateKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { UserError } from '../errors.ts';
import { WireReader, mpint, sshString, unsigned } from './wire.ts';

export interface AgentKey {
  /** The public key in SSH wire form (what `REQUEST_IDENTITIES` lists and `SIGN_REQUEST` names). */
  blob: Buffer;
  comment: string;
  /** The SSH signature blob over `data`; `flags` picks the RSA hash (2: SHA-256, 4: SHA-512). */
  sign(data: Buffer, flags: number): Buffer;
}

const curves: Record<string, { jwk: string; ssh: string; hash: string; size: number }> = {
  'P-256': { jwk: 'P-256', ssh: 'nistp256', hash: 'sha256', size: 32 },
  'P-384': { jwk: 'P-384', ssh: 'nistp384', hash: 'sha384', size: 48 },
  'P-521': { jwk: 'P-521', ssh: 'nistp521', hash: 'sha512', size: 66 },
};
const b64u = (b: Buffer) => b.toString('base64url');
const fromB64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

/** Parses one private key file; `path` names it in errors. */
export function parsePrivateKey(text: string, path: string): AgentKey {
  const openssh = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  let key: KeyObject;
  let comment = '';
  try {
    if (openssh) ({ key, comment } = fromOpenSsh(Buffer.from(openssh[1].replace(/\s+/g, ''), 'base64'), path));
    else key = createPrivateKey({ key: text, format: 'pem' });
  } catch (e) {
    if (e instanceof UserError) throw e;
    const encrypted = /ENCRYPTED|Proc-Type: 4,ENCRYPTED/.test(text) || /passphrase/i.test((e as Error).message);
    throw new UserError(encrypted ? `ssh key ${path} is protected by a passphrase, which slipway cannot ask for` : `ssh key ${path} is not a private key slipway can read: ${(e as Error).message}`, {
      hint: encrypted ? `add it to an ssh-agent (ssh-add ${path}) and pass --ssh default (or ID=$SSH_AUTH_SOCK)` : 'give an OpenSSH or PEM private key (Ed25519, RSA or ECDSA), or an agent socket',
    });
  }
  return agentKey(key, comment, path);
}

function fromOpenSsh(buf: Buffer, path: string): { key: KeyObject; comment: string } {
  const magic = 'openssh-key-v1\0';
  if (buf.subarray(0, magic.length).toString('latin1') !== magic) throw new Error('not an openssh-key-v1 file');
  const r = new WireReader(buf.subarray(magic.length));
  const cipher = r.text();
  r.string(); // kdf name
  r.string(); // kdf options
  if (cipher !== 'none') {
    throw new UserError(`ssh key ${path} is protected by a passphrase, which slipway cannot ask for`, { hint: `add it to an ssh-agent (ssh-add ${path}) and pass --ssh default (or ID=$SSH_AUTH_SOCK)` });
  }
  const count = r.u32();
  if (count !== 1) throw new Error(`the file holds ${count} keys; one per file, please`);
  r.string(); // the public key; derived again from the private part below
  const p = new WireReader(r.string());
  if (p.u32() !== p.u32()) throw new Error('corrupt private section (check words differ)');
  const type = p.text();
  let jwk: JsonWebKey;
  if (type === 'ssh-ed25519') {
    const pub = p.string();
    const priv = p.string();
    jwk = { kty: 'OKP', crv: 'Ed25519', x: b64u(pub), d: b64u(priv.subarray(0, 32)) };
  } else if (type === 'ssh-rsa') {
    const [n, e, d, iqmp, pp, q] = [p.string(), p.string(), p.string(), p.string(), p.string(), p.string()].map(unsigned);
    const big = (b: Buffer) => BigInt('0x' + (b.toString('hex') || '0'));
    const hex = (v: bigint) => { const h = v.toString(16); return Buffer.from(h.length % 2 ? '0' + h : h, 'hex'); };
    const dp = big(d) % (big(pp) - 1n);
    const dq = big(d) % (big(q) - 1n);
    jwk = { kty: 'RSA', n: b64u(n), e: b64u(e), d: b64u(d), p: b64u(pp), q: b64u(q), dp: b64u(hex(dp)), dq: b64u(hex(dq)), qi: b64u(iqmp) };
  } else if (type.startsWith('ecdsa-sha2-')) {
    const name = p.text();
    const curve = Object.values(curves).find((c) => c.ssh === name);
    if (!curve) throw new Error(`unknown ECDSA curve in ${type}`);
    const point = p.string();
    const d = unsigned(p.string());
    const pad = (b: Buffer) => Buffer.concat([Buffer.alloc(Math.max(0, curve.size - b.length)), b]);
    jwk = { kty: 'EC', crv: curve.jwk, x: b64u(point.subarray(1, 1 + curve.size)), y: b64u(point.subarray(1 + curve.size)), d: b64u(pad(d)) };
  } else {
    throw new Error(`key type ${type} is not supported`);
  }
  const comment = p.text();
  return { key: createPrivateKey({ key: jwk, format: 'jwk' }), comment };
}

function agentKey(key: KeyObject, comment: string, path: string): AgentKey {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return {
      blob: Buffer.concat([sshString('ssh-ed25519'), sshString(fromB64u(jwk.x))]), comment,
      sign: (data) => Buffer.concat([sshString('ssh-ed25519'), sshString(sign(null, data, key))]),
    };
  }
  if (jwk.kty === 'RSA') {
    return {
      blob: Buffer.concat([sshString('ssh-rsa'), mpint(fromB64u(jwk.e)), mpint(fromB64u(jwk.n))]), comment,
      sign(data, flags) {
        const [name, hash] = flags & 4 ? ['rsa-sha2-512', 'sha512'] : flags & 2 ? ['rsa-sha2-256', 'sha256'] : ['ssh-rsa', 'sha1'];
        return Buffer.concat([sshString(name), sshString(sign(hash, data, key))]);
      },
    };
  }
  const curve = jwk.kty === 'EC' ? curves[jwk.crv ?? ''] : undefined;
  if (curve) {
    const name = `ecdsa-sha2-${curve.ssh}`;
    return {
      blob: Buffer.concat([sshString(name), sshString(curve.ssh), sshString(Buffer.concat([Buffer.of(4), fromB64u(jwk.x), fromB64u(jwk.y)]))]), comment,
      sign(data) {
        const rs = sign(curve.hash, data, { key, dsaEncoding: 'ieee-p1363' });
        const half = rs.length / 2;
        return Buffer.concat([sshString(name), sshString(Buffer.concat([mpint(rs.subarray(0, half)), mpint(rs.subarray(half))]))]);
      },
    };
  }
  throw new UserError(`ssh key ${path}: ${jwk.kty} keys are not supported`, { hint: 'use an Ed25519, RSA or ECDSA key, or an agent socket' });
}

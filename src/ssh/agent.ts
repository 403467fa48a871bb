// The socket a RUN step talks to: a fresh unix socket per mount that either forwards every
// connection to the user's agent (an `ID=SOCKET` source) or answers the agent protocol itself from
// key files (`ID=KEYFILE`), as BuildKit's session does. Only listing identities and signing are
// served; everything else (adding or removing keys, locking) is refused with SSH_AGENT_FAILURE.
import { chmod, chown } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { UserError } from '../errors.ts';
import type { AgentKey } from './keys.ts';
import { WireReader, sshString, u32 } from './wire.ts';

const FAILURE = 5;
const REQUEST_IDENTITIES = 11;
const IDENTITIES_ANSWER = 12;
const SIGN_REQUEST = 13;
const SIGN_RESPONSE = 14;
/** Messages larger than this are refused (OpenSSH's agent uses 256 KiB). */
const MAX_MESSAGE = 256 * 1024;

/** Where an agent id's answers come from. */
export type AgentSource = { socket: string } | { keys: AgentKey[] };

export interface ServedAgent {
  path: string;
  close(): Promise<void>;
}

/** Listens at `path` (which must not exist), owned by uid:gid with `mode`, until closed. */
export async function serveAgent(source: AgentSource, path: string, owner: { mode: number; uid: number; gid: number }): Promise<ServedAgent> {
  // sockaddr_un has room for 107 bytes of path.
  if (Buffer.byteLength(path) > 107) throw new UserError(`cannot make an ssh agent socket at ${path}: a unix socket path may be 107 bytes at most`, { hint: 'point TMPDIR at a shorter directory, e.g. TMPDIR=/tmp' });
  const open = new Set<Socket>();
  const server: Server = createServer((conn) => {
    open.add(conn);
    conn.on('close', () => open.delete(conn));
    conn.on('error', () => conn.destroy());
    if ('socket' in source) forward(conn, source.socket);
    else answer(conn, source.keys);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, owner.mode);
  if (process.geteuid?.() === 0) await chown(path, owner.uid, owner.gid);
  return {
    path,
    close: () => new Promise<void>((resolve) => {
      for (const c of open) c.destroy();
      server.close(() => resolve());
    }),
  };
}

function forward(conn: Socket, socket: string): void {
  const upstream = connect(socket);
  upstream.on('error', () => conn.destroy());
  conn.on('close', () => upstream.destroy());
  upstream.on('close', () => conn.destroy());
  conn.pipe(upstream).pipe(conn);
}

function answer(conn: Socket, keys: AgentKey[]): void {
  let pending = Buffer.alloc(0);
  conn.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4) {
      const n = pending.readUInt32BE(0);
      if (n > MAX_MESSAGE) {
        conn.destroy();
        return;
      }
      if (pending.length < 4 + n) return;
      const reply = respond(pending.subarray(4, 4 + n), keys);
      pending = pending.subarray(4 + n);
      conn.write(Buffer.concat([u32(reply.length), reply]));
    }
  });
}

/** One reply of the in-process agent (draft-miller-ssh-agent §4). */
export function respond(message: Buffer, keys: AgentKey[]): Buffer {
  try {
    const r = new WireReader(message);
    const type = r.byte();
    if (type === REQUEST_IDENTITIES) {
      return Buffer.concat([Buffer.of(IDENTITIES_ANSWER), u32(keys.length), ...keys.flatMap((k) => [sshString(k.blob), sshString(k.comment)])]);
    }
    if (type === SIGN_REQUEST) {
      const blob = r.string();
      const data = r.string();
      const flags = r.done ? 0 : r.u32();
      const key = keys.find((k) => k.blob.equals(blob));
      if (key) return Buffer.concat([Buffer.of(SIGN_RESPONSE), sshString(key.sign(data, flags))]);
    }
  } catch {
    // a malformed message gets the failure reply
  }
  return Buffer.of(FAILURE);
}

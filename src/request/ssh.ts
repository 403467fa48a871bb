// `--ssh` values as buildx takes them: `default`, `ID` (both the agent at $SSH_AUTH_SOCK, from the
// env the front end gives), `ID=SOCKET`, or `ID=KEYFILE[,KEYFILE…]` (read here, served in-process).
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { parsePrivateKey, type AgentSource } from '../ssh/index.ts';

export interface SshSpec {
  id: string;
  source: AgentSource;
}

export function parseSshSpecs(values: string[], env: Record<string, string | undefined>, cwd: string): SshSpec[] {
  const seen = new Set<string>();
  return values.map((value) => {
    const eq = value.indexOf('=');
    const id = (eq < 0 ? value : value.slice(0, eq)).trim();
    if (!id || /[\s,]/.test(id)) throw new UserError(`invalid --ssh "${value}": expected default, ID, ID=SOCKET or ID=KEYFILE[,KEYFILE]`, { hint: 'for example --ssh default or --ssh github=$HOME/.ssh/id_ed25519' });
    if (seen.has(id)) throw new UserError(`--ssh id "${id}" is given twice`, { hint: 'give each id once; list several key files after one id, separated by commas' });
    seen.add(id);
    const paths = eq < 0 ? [] : value.slice(eq + 1).split(',').map((p) => p.trim()).filter(Boolean);
    if (paths.length === 0) {
      const sock = env.SSH_AUTH_SOCK;
      if (!sock) throw new UserError(`--ssh ${value}: SSH_AUTH_SOCK is not set, so there is no agent to forward`, { hint: 'start an agent (eval $(ssh-agent); ssh-add KEY), or name a socket or key file: --ssh ID=PATH' });
      paths.push(sock);
    }
    const files = paths.map((p) => resolve(cwd, p));
    const stats = files.map((f) => {
      try {
        return statSync(f);
      } catch {
        throw new UserError(`--ssh ${id}: ${f} does not exist`, { hint: 'name an ssh-agent socket or a private key file' });
      }
    });
    if (stats.length === 1 && stats[0].isSocket()) return { id, source: { socket: files[0] } };
    const keys = files.map((f, i) => {
      if (stats[i].isSocket()) throw new UserError(`--ssh ${id}: ${f} is a socket; a socket must be the id's only path`, { hint: `pass it alone: --ssh ${id}=${f}` });
      return parsePrivateKey(readFileSync(f, 'utf8'), f);
    });
    return { id, source: { keys } };
  });
}

// Real OpenSSH parts for the ssh tests: a foreground ssh-agent at a fresh socket, and the host's
// ssh-add with every library it loads, to run inside a RUN step's rootfs (no ssh-add in busybox).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Why the ssh tests cannot run here, or undefined. */
export function opensshMissing(): string | undefined {
  return ['ssh-agent', 'ssh-add', 'ssh-keygen', 'ldd'].find((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) ? 'openssh-client is not installed' : undefined;
}

/** A real ssh-agent in the foreground at a fresh socket in `dir`; stop it with child.kill(). */
export async function startAgent(dir: string): Promise<{ sock: string; child: ChildProcess }> {
  const sock = join(dir, `agent-${Math.random().toString(36).slice(2)}.sock`);
  const child = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(existsSync(sock), 'ssh-agent made its socket');
  return { sock, child };
}

/**
 * Copies the host's ssh-add and its libraries into `dir`, the loader as dir/ld.so: inside a step,
 * `/t/ld.so --library-path /t /t/ssh-add -l` runs it (with `dir` bound at /t).
 */
export function sshAddTools(dir: string): void {
  mkdirSync(dir, { recursive: true });
  copyFileSync('/usr/bin/ssh-add', join(dir, 'ssh-add'));
  const ldd = spawnSync('ldd', ['/usr/bin/ssh-add'], { encoding: 'utf8' }).stdout;
  for (const line of ldd.split('\n')) {
    const lib = /=>\s*(\S+)/.exec(line)?.[1];
    if (lib) copyFileSync(lib, join(dir, basename(lib)));
    else if (/^\s*(\/\S*ld-linux\S*)/.test(line)) copyFileSync(/^\s*(\S+)/.exec(line)![1], join(dir, 'ld.so'));
  }
}

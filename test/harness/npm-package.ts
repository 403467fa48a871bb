// The project as users install it: `npm pack` of the checkout, then `npm install -g --offline` of
// that tarball into a fresh, empty prefix (no registry, no node_modules, no src/ involved).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const projectDir = realpathSync(new URL('../..', import.meta.url).pathname);

export interface InstalledPackage {
  tarball: string;
  /** The files npm pack put in the tarball, sorted. */
  packed: string[];
  /** The install prefix: bin/slipway and lib/node_modules/slipway. */
  prefix: string;
  bin: string;
}

/** npm with this process's Node first on PATH (npm's own `#!/usr/bin/env node` then runs on it). */
export function npmEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}`, npm_config_update_notifier: 'false' };
}

export async function packAndInstall(): Promise<InstalledPackage> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-npm-'));
  const env = npmEnv();
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: projectDir, env, maxBuffer: 16 << 20 });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(work, info.filename);
  const prefix = join(work, 'prefix');
  mkdirSync(prefix);
  await run('npm', ['install', '-g', '--offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { cwd: work, env });
  return { tarball, packed: info.files.map((f) => f.path).sort(), prefix, bin: join(prefix, 'bin', 'slipway') };
}

// Loaded into every test process (`npm test` passes --import): the process gets its own temp root
// under the system's, and removes it as it exits, so a run leaves none of the temp dirs its tests
// make behind (the test runner's own process holds its workers' roots, so a killed worker's goes too).
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = mkdtempSync(join(tmpdir(), 'slipway-test-'));
chmodSync(root, 0o1777); // as /tmp: tests running steps as other users make their dirs here too
process.env.TMPDIR = root;

process.on('exit', () => {
  // A mount left below it (a step killed half-way) keeps the tree: removing through a mount would
  // reach whatever the mount shows.
  const mountPoints = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]);
  if (mountPoints.some((m) => m === root || m?.startsWith(root + '/'))) return;
  try {
    rmSync(root, { recursive: true, force: true });
  } catch { /* a leftover is disk space only */ }
});

// `node bench/profile.ts FILE.cpuprofile… [--top N]`: self time per function of V8 CPU profiles
// (as BENCH_CPU_PROF leaves them), summed over the files, largest first, with the share of the
// total and where the function is (file:line). "(idle)" is time waiting (on child processes, I/O).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt === -1 ? 30 : Number(args[topAt + 1]);
const files = args.filter((a, i) => a !== '--top' && i !== topAt + 1);
if (files.length === 0) {
  console.error('usage: node bench/profile.ts FILE.cpuprofile… [--top N]');
  process.exit(2);
}

const self = new Map<string, number>();
let total = 0;
for (const file of files) {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  p.samples.forEach((id, i) => {
    const f = byId.get(id)!.callFrame;
    const where = f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}\t${where}`;
    const us = p.timeDeltas[i] ?? 0;
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
}
console.log(`${files.length} profile(s), ${(total / 1e6).toFixed(2)} s sampled`);
console.log(`${'self ms'.padStart(9)} ${'share'.padStart(6)}  function  (file:line)`);
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  const [name, where] = key.split('\t');
  console.log(`${(us / 1000).toFixed(0).padStart(9)} ${`${((us / total) * 100).toFixed(1)}%`.padStart(6)}  ${name}${where ? `  (${where})` : ''}`);
}

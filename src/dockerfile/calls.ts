// `--call targets` and `--call outline`: the data BuildKit's Dockerfile frontend returns for those
// subrequests, and the text buildx prints for them (Go text/tabwriter layout reproduced).
import { docComment, type ArgInstruction, type Instruction } from './instructions.ts';
import { mountWithDefaults } from './flags.ts';
import type { BuildPlan } from './stages.ts';
import { ShellLex } from './shell-lex.ts';

export interface TargetInfo { name: string; description: string; default: boolean; base: string; platform?: string }
export interface OutlineArg { name: string; value: string; description: string; line: number }
export interface OutlineSecret { name: string; required: boolean; line: number }
export interface Outline { name: string; description: string; args: OutlineArg[]; secrets: OutlineSecret[]; ssh: OutlineSecret[] }

/** Go text/tabwriter with minwidth 0, tabwidth 0, padchar ' ', no flags, for one aligned block. */
export function tabwrite(lines: string[][], padding: number): string {
  const width = (s: string): number => Array.from(s).length;
  const cols = Math.max(0, ...lines.map((l) => l.length - 1));
  const widths: number[] = [];
  for (let c = 0; c < cols; c++) widths[c] = Math.max(0, ...lines.filter((l) => l.length - 1 > c).map((l) => width(l[c])));
  return lines.map((l) => l.map((cell, i) => (i < l.length - 1 ? cell + ' '.repeat(widths[i] + padding - width(cell)) : cell)).join('') + '\n').join('');
}

/** The stages of the Dockerfile as `--call targets` lists them (the last one is the default). */
export function listTargets(plan: BuildPlan): TargetInfo[] {
  return plan.allStages.map((s, i) => ({
    name: s.name ?? '', description: s.description, default: i === plan.allStages.length - 1,
    base: s.from.image, ...(s.from.platform !== undefined ? { platform: s.from.platform } : {}),
  }));
}

/** `slipway build --call targets` output, as buildx prints it. */
export function formatTargets(plan: BuildPlan): string {
  const targets = listTargets(plan);
  if (targets.length === 0) return 'No targets\n';
  const rows = [['TARGET', 'DESCRIPTION']];
  for (const t of targets) {
    const name = t.default ? (t.name === '' ? '(default)' : `${t.name} (default)`) : t.name;
    rows.push([name, t.description]);
  }
  return tabwrite(rows, 3);
}

/** What the planned target needs from the user: build args (with values and doc comments), secrets, SSH. */
export function outlineTarget(plan: BuildPlan): Outline {
  const def = plan.definition;
  const lex = new ShellLex({ escapeToken: def.escapeToken, skipUnsetEnv: false });
  const args = new Map<string, OutlineArg>();
  const add = (ins: ArgInstruction, key: string, value: string | undefined): void => {
    if (args.has(key)) return;
    args.set(key, { name: key, value: value ?? '', description: docComment(ins.node.comments, key), line: ins.range.startLine });
  };
  // Global ARGs count when a needed stage's FROM uses them.
  const usedGlobals = new Set<string>();
  for (const s of plan.stages) {
    for (const w of [s.from.image, s.from.platform ?? '']) {
      try { for (const m of lex.process(w, plan.globalArgs).matched) usedGlobals.add(m); } catch { /* reported by planBuild */ }
    }
  }
  for (const ins of def.metaArgs) for (const a of ins.args) if (usedGlobals.has(a.key)) add(ins, a.key, plan.globalArgs.get(a.key));
  const secrets = new Map<string, OutlineSecret>();
  const ssh = new Map<string, OutlineSecret>();
  const visit = (ins: Instruction): void => {
    if (ins.kind === 'ARG') {
      for (const a of ins.args) {
        const given = plan.buildArgs.get(a.key);
        if (given === undefined && a.value === undefined && plan.globalArgs.has(a.key)) continue; // inherited from global scope
        let value = given ?? a.value;
        if (given === undefined && a.value !== undefined) {
          try { value = lex.processWord(a.value, plan.globalArgs); } catch { value = a.value; }
        }
        add(ins, a.key, value);
      }
    }
    if (ins.kind === 'RUN') {
      for (const spec of ins.mountSpecs) {
        if (spec.type !== 'secret' && spec.type !== 'ssh') continue;
        const m = mountWithDefaults(spec);
        const map = spec.type === 'secret' ? secrets : ssh;
        const prev = map.get(m.id);
        if (prev) prev.required ||= m.required;
        else map.set(m.id, { name: m.id, required: m.required, line: ins.range.startLine });
      }
    }
  };
  for (const s of plan.stages) for (const ins of s.instructions) visit(ins);
  const byLine = <T extends { line: number }>(l: T[]): T[] => l.sort((a, b) => a.line - b.line);
  return {
    name: plan.target.name ?? '', description: plan.target.description,
    args: byLine([...args.values()]), secrets: byLine([...secrets.values()]), ssh: byLine([...ssh.values()]),
  };
}

/** `slipway build --call outline` output, as buildx prints it (each section followed by a blank line). */
export function formatOutline(plan: BuildPlan): string {
  const o = outlineTarget(plan);
  let out = '';
  if (o.name !== '' || o.description !== '') {
    const rows = [['TARGET:', o.name === '' ? '(default)' : o.name]];
    if (o.description !== '') rows.push(['DESCRIPTION:', o.description]);
    out += tabwrite(rows, 1) + '\n';
  }
  if (o.args.length) out += tabwrite([['BUILD ARG', 'VALUE', 'DESCRIPTION'], ...o.args.map((a) => [a.name, a.value, a.description])], 3) + '\n';
  if (o.secrets.length) out += tabwrite([['SECRET', 'REQUIRED'], ...o.secrets.map((s) => [s.name, s.required ? 'true' : ''])], 3) + '\n';
  if (o.ssh.length) out += tabwrite([['SSH', 'REQUIRED'], ...o.ssh.map((s) => [s.name, s.required ? 'true' : ''])], 3) + '\n';
  return out;
}

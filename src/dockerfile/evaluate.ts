// Per-instruction evaluation inside one stage, as BuildKit's dockerfile2llb dispatch does it: the
// environment at each point (base image Env, then ARG and ENV in order), word expansion for the
// instructions BuildKit expands, stage ARG scoping (build-arg > default > global value), and the
// exact `created_by` history string BuildKit writes for each instruction.
import { UserError } from '../errors.ts';
import { withLocation } from './errors.ts';
import { formatGoDuration, mountWithDefaults, parseMount, type DeviceSpec, type Mount } from './flags.ts';
import type { ArgDecl, HealthConfig, Instruction, InlineFile, SourceContent } from './instructions.ts';
import { parseHeredocMarker } from './heredoc.ts';
import { PROXY_ARGS, type BuildPlan, type PlannedStage } from './stages.ts';
import { goQuote, ShellLex } from './shell-lex.ts';

/** What the engine knows about the base (image config, or the parent stage's final state). */
export interface BaseState {
  /** `KEY=value` strings from the image config. */
  env?: string[];
  workingDir?: string;
  shell?: string[];
  os?: string;
}

/** An instruction with its words expanded as BuildKit expands them at conversion time. */
export type ExpandedInstruction =
  | { kind: 'ENV'; pairs: { key: string; value: string }[] }
  | { kind: 'LABEL'; pairs: { key: string; value: string }[] }
  | { kind: 'ARG'; args: { key: string; value?: string }[] }
  | { kind: 'RUN'; args: string[]; mounts: Mount[]; network: 'default' | 'none' | 'host'; security: 'sandbox' | 'insecure'; inlineFiles: { path: string; data: string; mode: number }[]; devices?: DeviceSpec[] }
  | { kind: 'COPY' | 'ADD'; sources: string[]; contents: SourceContent[]; dest: string; from?: string; chown?: string; chmod?: string; link: boolean; parents: boolean; exclude: string[]; checksum?: string; keepGitDir: boolean; unpack?: boolean }
  | { kind: 'WORKDIR'; path: string }
  | { kind: 'USER'; user: string }
  | { kind: 'VOLUME'; volumes: string[] }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'STOPSIGNAL'; signal: string }
  | { kind: 'CMD' | 'ENTRYPOINT'; args: string[] }
  | { kind: 'SHELL'; shell: string[] }
  | { kind: 'HEALTHCHECK'; health: HealthConfig }
  | { kind: 'MAINTAINER'; maintainer: string }
  | { kind: 'ONBUILD'; expression: string };

export interface EvaluatedStep {
  source: Instruction;
  expanded: ExpandedInstruction;
  /** The history `created_by` (undefined for ONBUILD, which writes no history). */
  createdBy?: string;
  /** History `empty_layer`: the step makes no layer (the engine runs it as a config change). */
  emptyLayer: boolean;
  /** RUN only: the env the command sees, every `KEY=value` (image Env + ARG + ENV); proxies are in `proxyEnv`. */
  env?: string[];
  /** Variables the expansion named that were not set (BuildKit's UndefinedVar check reads them). */
  unmatched: string[];
}

const defaultShell = (os: string): string[] => (os === 'windows' ? ['cmd', '/S', '/C'] : ['/bin/sh', '-c']);

/** POSIX path.Clean. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); continue; }
    out.push(part);
  }
  const s = (abs ? '/' : '') + out.join('/');
  return s === '' ? (abs ? '/' : '.') : s;
}

/** BuildKit's NormalizeWorkdir for Linux: relative paths join the current working directory. */
export function normalizeWorkdir(current: string, requested: string): string {
  if (requested === '') throw new UserError('cannot normalize nothing', { hint: 'give WORKDIR a path' });
  return requested.startsWith('/') ? cleanPath(requested) : cleanPath('/' + (current || '/') + '/' + requested);
}

/** Go's strconv.QuoteRune for the `%q` of an int (HEALTHCHECK retries in history). */
function goQuoteRune(n: number): string {
  const esc: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v', 39: "\\'", 92: '\\\\' };
  if (esc[n]) return `'${esc[n]}'`;
  if (n < 0x20 || n === 0x7f) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return "'\\ufffd'";
  const ch = String.fromCodePoint(n);
  if (/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch)) return `'${ch}'`;
  return n < 0x10000 ? `'\\u${n.toString(16).padStart(4, '0')}'` : `'\\U${n.toString(16).padStart(8, '0')}'`;
}

/** Go's `%q` of a []string: `["a" "b"]`. */
const goQuoteList = (l: string[]): string => `[${l.map(goQuote).join(' ')}]`;

/** nat.ParsePortSpecs for EXPOSE values (`80`, `80/udp`, `8000-8002/tcp`) → sorted `port/proto` keys. */
export function parseExposedPorts(ports: string[]): string[] {
  const out = new Set<string>();
  for (const spec of ports) {
    const slash = spec.lastIndexOf('/');
    const portPart = slash < 0 ? spec : spec.slice(0, slash);
    const proto = (slash < 0 ? 'tcp' : spec.slice(slash + 1)).toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new UserError(`invalid proto: ${proto}`, { hint: 'EXPOSE takes port[/tcp|udp|sctp]' });
    const container = portPart.includes(':') ? portPart.slice(portPart.lastIndexOf(':') + 1) : portPart;
    const m = /^(\d+)(?:-(\d+))?$/.exec(container);
    const bad = (): never => { throw new UserError(`invalid containerPort: ${container}`, { hint: 'EXPOSE takes numbers 1-65535, or a range like 8000-8010' }); };
    if (!m) bad();
    const start = Number(m![1]);
    const end = m![2] === undefined ? start : Number(m![2]);
    if (start > 65535 || end > 65535 || end < start) bad();
    for (let p = start; p <= end; p++) out.add(`${p}/${proto}`);
  }
  return [...out].sort();
}

const SIGNALS = ['ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT', 'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ'];

/** moby's signal.ParseSignal (Linux): a number, a name, or SIGNAME, or RTMIN+n. */
export function validateSignal(s: string): void {
  if (/^\d+$/.test(s)) { if (Number(s) === 0) throw new UserError(`Invalid signal: ${s}`, { hint: 'use a signal name like SIGTERM or a number 1-64' }); return; }
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (SIGNALS.includes(name) || /^RTMIN(\+([1-9]|1[0-5]))?$/.test(name) || /^RTMAX(-([1-9]|1[0-4]))?$/.test(name)) return;
  throw new UserError(`Invalid signal: ${s}`, { hint: 'use a signal name like SIGTERM or SIGQUIT, or a number' });
}

/** The `created_by` of a HEALTHCHECK, as Go prints `%q` of the config pointer. */
export function healthcheckCreatedBy(h: HealthConfig): string {
  const d = (ns: number): string => goQuote(formatGoDuration(ns));
  return `HEALTHCHECK &{${goQuoteList(h.test)} ${d(h.interval)} ${d(h.timeout)} ${d(h.startPeriod)} ${d(h.startInterval)} ${goQuoteRune(h.retries)}}`;
}

/** RUN's argv as BuildKit builds it (heredocs included), before the shell is prepended. */
function runArgs(cmdLine: string[], files: InlineFile[], prependShell: boolean, os: string): { args: string[]; inlineFiles: { path: string; data: string; mode: number }[] } {
  if (files.length === 0) return { args: cmdLine, inlineFiles: [] };
  if (cmdLine.length !== 1 || !prependShell) throw new UserError(`parsing produced an invalid run command: [${cmdLine.join(' ')}]`);
  if (parseHeredocMarker(cmdLine[0])) {
    const f = files[0];
    if (os !== 'windows' && f.data.startsWith('#!')) {
      return { args: ['/dev/pipes/' + f.name], inlineFiles: [{ path: '/dev/pipes/' + f.name, data: f.data, mode: 0o755 }] };
    }
    return { args: [f.data], inlineFiles: [] };
  }
  let full = cmdLine[0];
  for (const f of files) full += '\n' + f.content + f.name;
  return { args: [full], inlineFiles: [] };
}

/**
 * Walks one planned stage instruction by instruction, the way BuildKit dispatches it. The engine
 * creates one per stage with the base image's config, calls `step()` for each instruction in
 * order, and applies `expanded` to its own image config / filesystem. ENV and ARG change the
 * environment seen by later steps; WORKDIR and SHELL are tracked for history strings.
 */
export class StageEvaluator {
  readonly plan: BuildPlan;
  readonly stage: PlannedStage;
  /** Variables for expansion and RUN: base Env + ARG + ENV (insertion order kept). */
  readonly env = new Map<string, string>();
  /** The image config Env (base Env + ENV only). */
  readonly imageEnv = new Map<string, string>();
  workingDir: string;
  shell: string[] | undefined;
  readonly os: string;
  /** ARGs declared in this stage so far, with their values (BuildKit's d.buildArgs). */
  readonly declaredArgs: ArgDecl[] = [];
  private readonly lex: ShellLex;
  private readonly file: string;
  private unmatched = new Set<string>();

  constructor(plan: BuildPlan, stage: PlannedStage, base: BaseState = {}) {
    this.plan = plan;
    this.stage = stage;
    this.file = plan.definition.file;
    this.lex = new ShellLex({ escapeToken: plan.definition.escapeToken });
    for (const kv of base.env ?? []) {
      const i = kv.indexOf('=');
      const k = i < 0 ? kv : kv.slice(0, i);
      const v = i < 0 ? '' : kv.slice(i + 1);
      this.env.set(k, v);
      this.imageEnv.set(k, v);
    }
    this.workingDir = base.workingDir || '/';
    this.shell = base.shell && base.shell.length ? [...base.shell] : undefined;
    this.os = base.os ?? stage.platform.os;
  }

  /** Proxy build args (HTTP_PROXY, …) given with --build-arg: RUN gets them, history never does unless declared. */
  get proxyEnv(): Map<string, string> {
    const m = new Map<string, string>();
    for (const [k, v] of this.plan.buildArgs) if (PROXY_ARGS.includes(k)) m.set(k, v);
    return m;
  }

  /** Expands one word with the current environment (what BuildKit does for COPY, ENV, WORKDIR, …). */
  expandWord(word: string): string { return this.expandWith(this.lex, word); }

  private expandWith(lex: ShellLex, word: string): string {
    const r = lex.process(word, this.env);
    for (const u of r.unmatched) this.unmatched.add(u);
    return r.result;
  }

  private envList(): string[] { return [...this.env].map(([k, v]) => `${k}=${v}`); }

  /** Evaluates the next instruction of the stage. Throws DockerfileError with its location. */
  step(ins: Instruction): EvaluatedStep {
    this.unmatched = new Set();
    try {
      return { ...this.stepInner(ins), unmatched: [...this.unmatched] };
    } catch (e) {
      withLocation(e, this.file, ins.range, ins.node.original);
    }
  }

  private stepInner(ins: Instruction): Omit<EvaluatedStep, 'unmatched'> {
    const w = (s: string): string => this.expandWord(s);
    const done = (expanded: ExpandedInstruction, createdBy: string | undefined, emptyLayer: boolean): Omit<EvaluatedStep, 'unmatched'> =>
      (expanded.kind === 'RUN' ? { source: ins, expanded, createdBy, emptyLayer, env: this.envList() } : { source: ins, expanded, createdBy, emptyLayer });
    switch (ins.kind) {
      case 'FROM': throw new UserError('FROM starts a new stage; it is not a step of one');
      case 'ENV': {
        const pairs = ins.pairs.map((p) => ({ key: w(p.key), value: w(p.value) }));
        for (const p of pairs) { this.env.set(p.key, p.value); this.imageEnv.set(p.key, p.value); }
        return done({ kind: 'ENV', pairs }, 'ENV ' + pairs.map((p) => `${p.key}=${p.value}`).join(' '), true);
      }
      case 'LABEL': {
        const pairs = ins.pairs.map((p) => ({ key: w(p.key), value: w(p.value) }));
        return done({ kind: 'LABEL', pairs }, 'LABEL ' + pairs.map((p) => `${p.key}=${p.value}`).join(' '), true);
      }
      case 'ARG': {
        const out: { key: string; value?: string }[] = [];
        for (const a of ins.args) {
          let value: string | undefined;
          const given = this.plan.buildArgs.get(a.key);
          if (given !== undefined) value = given;
          else if (a.value !== undefined) value = w(a.value);
          else value = this.plan.globalArgs.get(a.key);
          if (value !== undefined) this.env.set(a.key, value);
          const decl = value === undefined ? { key: a.key } : { key: a.key, value };
          this.declaredArgs.push(decl);
          out.push(decl);
        }
        return done({ kind: 'ARG', args: out }, 'ARG ' + out.map((a) => (a.value === undefined ? a.key : `${a.key}=${a.value}`)).join(' '), true);
      }
      case 'RUN': {
        let ssh = 0;
        const mounts = ins.mounts.map((m) => {
          const spec = parseMount(m, w);
          return mountWithDefaults(spec, spec.type === 'ssh' ? ssh++ : 0);
        });
        const { args: argv, inlineFiles } = runArgs(ins.cmdLine, ins.files, ins.prependShell, this.os);
        const args = ins.prependShell ? [...(this.shell ?? defaultShell(this.os)), argv.join(' ')] : argv;
        return done({ kind: 'RUN', args, mounts, network: ins.network, security: ins.security, inlineFiles, ...(ins.devices ? { devices: ins.devices } : {}) }, `RUN ${this.runCommandString(args)} # buildkit`, false);
      }
      case 'COPY': case 'ADD': {
        const sources = ins.sources.map(w);
        const dest = w(ins.dest);
        const heredocLex = new ShellLex({ skipProcessQuotes: true });
        const contents = ins.contents.map((c) => (c.expand ? { ...c, data: this.expandWith(heredocLex, c.data) } : c));
        const chown = ins.chown === undefined ? undefined : w(ins.chown);
        const chmod = ins.chmod === undefined ? undefined : w(ins.chmod);
        const checksum = ins.checksum === undefined ? undefined : w(ins.checksum);
        // Octal up to 07777, or (dockerfile 1.14+) a symbolic mode such as u=rwx,go=rx or +x, checked
        // when applied; a numeric-looking non-octal value is the octal error (convert_copy.go).
        if (chmod !== undefined && chmod !== '' && (/^[0-7]+$/.test(chmod) ? Number.parseInt(chmod, 8) > 0o7777 : /^\d+$/.test(chmod))) {
          throw new UserError(`invalid chmod parameter: '${chmod}'. it should be octal string and between 0 and 07777`, { hint: 'write --chmod=644 or --chmod=0755' });
        }
        // Dockerfile 1.28 (moby/buildkit#7134): a --link copy is made on an empty tree, where no
        // /etc/passwd or /etc/group names anyone, so --chown by name is refused as the file is read.
        if (ins.link && chown && chown.split(':').some((part) => part !== '' && part !== 'root' && !/^\d+$/.test(part))) {
          throw new UserError(`${ins.kind} --link cannot use --chown=${chown}: a --link copy does not see the image's /etc/passwd and /etc/group, so only numeric ids (or root) work`, {
            hint: `write --chown=UID[:GID] with the numbers, or drop --link`,
          });
        }
        if (checksum !== undefined) {
          if (ins.kind === 'COPY') throw new UserError("checksum can't be specified for COPY");
          if (sources.length !== 1) throw new UserError("checksum can't be specified for multiple sources", { hint: 'use one ADD per checksummed URL' });
          // A URL, or a git remote as fs/ parseGitSource reads one (the sha256 or the commit is checked when fetched).
          if (!/^(https?|git|ssh):\/\//.test(sources[0]) && !/^git@[^:]+:/.test(sources[0])) {
            throw new UserError('checksum requires HTTP(S) or Git sources', { hint: '--checksum applies to ADD <https-url> (sha256:…) or ADD <git-url> (the commit)' });
          }
        }
        const exclude = ins.exclude.map(w);
        let msg = ins.kind;
        if (ins.parents) msg += ' --parents';
        if (chown) msg += ' --chown=' + chown;
        if (chmod) msg += ' --chmod=' + chmod;
        for (const s of sources) msg += ' ' + s;
        for (const c of contents) msg += ' <<' + c.path;
        msg += ' ' + dest;
        const expanded: ExpandedInstruction = {
          kind: ins.kind, sources, contents, dest, link: ins.link, parents: ins.parents, exclude, keepGitDir: ins.keepGitDir, ...(ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
          ...(ins.from !== undefined ? { from: ins.from } : {}), ...(chown !== undefined ? { chown } : {}),
          ...(chmod !== undefined ? { chmod } : {}), ...(checksum !== undefined ? { checksum } : {}),
        };
        return done(expanded, msg + ' # buildkit', false);
      }
      case 'WORKDIR': {
        const wd = normalizeWorkdir(this.workingDir, w(ins.path));
        this.workingDir = wd;
        return done({ kind: 'WORKDIR', path: wd }, 'WORKDIR ' + wd, wd === '/');
      }
      case 'USER': { const user = w(ins.user); return done({ kind: 'USER', user }, 'USER ' + user, true); }
      case 'VOLUME': {
        const volumes = ins.volumes.map(w);
        if (volumes.some((v) => v === '')) throw new UserError('VOLUME specified can not be an empty string', { hint: 'check the variable used in VOLUME' });
        return done({ kind: 'VOLUME', volumes }, `VOLUME [${volumes.join(' ')}]`, true);
      }
      case 'EXPOSE': {
        const ports = ins.ports.flatMap((p) => this.lex.processWords(p, this.env));
        const specs = parseExposedPorts(ports);
        return done({ kind: 'EXPOSE', ports: specs }, `EXPOSE map[${specs.map((p) => p + ':{}').join(' ')}]`, true);
      }
      case 'STOPSIGNAL': {
        const signal = w(ins.signal);
        validateSignal(signal);
        return done({ kind: 'STOPSIGNAL', signal }, 'STOPSIGNAL ' + signal, true);
      }
      case 'CMD': case 'ENTRYPOINT': {
        const args = ins.prependShell ? [...(this.shell ?? defaultShell(this.os)), ins.cmdLine.join(' ')] : ins.cmdLine;
        return done({ kind: ins.kind, args }, `${ins.kind} ${goQuoteList(args)}`, true);
      }
      case 'SHELL':
        this.shell = [...ins.shell];
        return done({ kind: 'SHELL', shell: ins.shell }, `SHELL [${ins.shell.join(' ')}]`, true);
      case 'HEALTHCHECK': return done({ kind: 'HEALTHCHECK', health: ins.health }, healthcheckCreatedBy(ins.health), true);
      case 'MAINTAINER': return done({ kind: 'MAINTAINER', maintainer: ins.maintainer }, 'MAINTAINER ' + ins.maintainer, true);
      case 'ONBUILD': return done({ kind: 'ONBUILD', expression: ins.expression }, undefined, true);
    }
  }

  /** BuildKit's runCommandString: `|N K=v … ` for the stage's declared ARGs, then the argv. */
  runCommandString(args: string[]): string {
    const pairs: string[] = [];
    const idx = new Map<string, number>();
    for (const a of this.declaredArgs) {
      const v = this.env.get(a.key) ?? a.value ?? '';
      const i = idx.get(a.key);
      if (i !== undefined) pairs[i] = `${a.key}=${v}`;
      else { idx.set(a.key, pairs.length); pairs.push(`${a.key}=${v}`); }
    }
    const prefix = pairs.length ? [`|${pairs.length}`, ...pairs] : [];
    return [...prefix, ...args].join(' ');
  }
}

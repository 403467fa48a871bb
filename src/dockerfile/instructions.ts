// AST nodes → typed instructions (BuildKit's instructions/parse.go): every instruction with every
// flag BuildKit accepts, argument-count rules, heredoc sources, and the split into the global ARG
// section and build stages. Words are NOT expanded here (see evaluate.ts); raw text is kept.
import { UserError } from '../errors.ts';
import { DockerfileError, type SourceRange } from './errors.ts';
import { parseDevice, parseFlags, parseGoDuration, parseMount, suggest, type DeviceSpec, type FlagSpec, type MountSpec } from './flags.ts';
import { chompHeredoc, parseHeredocMarker } from './heredoc.ts';
import { parseDockerfile, type Directives, type KeyValue, type Node } from './parser.ts';

interface Common {
  /** The parsed node (original text, flags, range, comments). */
  node: Node;
  range: SourceRange;
}

export interface FromInstruction extends Common { kind: 'FROM'; image: string; stageName?: string; platform?: string }
/** A heredoc attached to RUN: `data` is the body with `<<-` tabs already stripped. */
export interface InlineFile { name: string; /** body with `<<-` tabs stripped */ data: string; /** body as written */ content: string; chomp: boolean; expand: boolean }
export interface RunInstruction extends Common {
  kind: 'RUN';
  cmdLine: string[];
  /** Shell form: cmdLine[0] is run by the shell. */
  prependShell: boolean;
  files: InlineFile[];
  /** `--mount` values as written (expanded at dispatch: see evaluate.ts). */
  mounts: string[];
  /** Parsed without expansion, for the stage graph and `--call outline`. */
  mountSpecs: MountSpec[];
  network: 'default' | 'none' | 'host';
  security: 'sandbox' | 'insecure';
  /** `--device` values (CDI device names), when given. */
  devices?: DeviceSpec[];
}
export interface CmdInstruction extends Common { kind: 'CMD'; cmdLine: string[]; prependShell: boolean }
export interface EntrypointInstruction extends Common { kind: 'ENTRYPOINT'; cmdLine: string[]; prependShell: boolean }
export interface EnvInstruction extends Common { kind: 'ENV'; pairs: KeyValue[] }
export interface LabelInstruction extends Common { kind: 'LABEL'; pairs: KeyValue[] }
export interface MaintainerInstruction extends Common { kind: 'MAINTAINER'; maintainer: string }
export interface ExposeInstruction extends Common { kind: 'EXPOSE'; ports: string[] }
/** A heredoc used as a COPY/ADD source file named `path`. */
export interface SourceContent { path: string; data: string; expand: boolean }
export interface CopyInstruction extends Common {
  kind: 'COPY' | 'ADD';
  sources: string[];
  contents: SourceContent[];
  dest: string;
  /** COPY only: stage name, stage index or image reference. */
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  keepGitDir: boolean;
  /** ADD --unpack (dockerfile 1.17): extract archives (default: local ones yes, URLs no). */
  unpack?: boolean;
}
export interface VolumeInstruction extends Common { kind: 'VOLUME'; volumes: string[] }
export interface UserInstruction extends Common { kind: 'USER'; user: string }
export interface WorkdirInstruction extends Common { kind: 'WORKDIR'; path: string }
export interface ArgDecl { key: string; value?: string }
export interface ArgInstruction extends Common { kind: 'ARG'; args: ArgDecl[] }
export interface OnbuildInstruction extends Common { kind: 'ONBUILD'; expression: string; trigger: Instruction }
export interface StopsignalInstruction extends Common { kind: 'STOPSIGNAL'; signal: string }
export interface HealthConfig {
  /** ["NONE"], ["CMD", ...args] or ["CMD-SHELL", command]. */
  test: string[];
  /** Nanoseconds; 0 = inherit/default. */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}
export interface HealthcheckInstruction extends Common { kind: 'HEALTHCHECK'; health: HealthConfig }
export interface ShellInstruction extends Common { kind: 'SHELL'; shell: string[] }

export type Instruction =
  | FromInstruction | RunInstruction | CmdInstruction | EntrypointInstruction | EnvInstruction
  | LabelInstruction | MaintainerInstruction | ExposeInstruction | CopyInstruction | VolumeInstruction
  | UserInstruction | WorkdirInstruction | ArgInstruction | OnbuildInstruction | StopsignalInstruction
  | HealthcheckInstruction | ShellInstruction;

export const INSTRUCTION_NAMES = ['FROM', 'RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY',
  'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL'];

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

class Bad extends Error {
  readonly hint?: string;
  constructor(message: string, hint?: string) { super(message); this.hint = hint; }
}
const atLeastOne = (c: string): Bad => new Bad(`${c} requires at least one argument`, `write ${c} followed by its arguments`);
const exactlyOne = (c: string): Bad => new Bad(`${c} requires exactly one argument`, `write ${c} <value> on one line (quote nothing)`);

function flagsOf(node: Node, spec: FlagSpec) {
  return parseFlags(node.flags, spec, node.rawKeyword.toUpperCase());
}

function noFlags(node: Node): void { flagsOf(node, {}); }

function shellDependent(node: Node): { cmdLine: string[]; prependShell: boolean } {
  return { cmdLine: node.json ? node.args : node.args.length ? [node.args.join(' ')] : [], prependShell: !node.json };
}

function parseCopyLike(node: Node, isAdd: boolean): CopyInstruction {
  const name = isAdd ? 'ADD' : 'COPY';
  const spec: FlagSpec = isAdd
    ? { chown: { type: 'string' }, chmod: { type: 'string' }, link: { type: 'bool' }, 'keep-git-dir': { type: 'bool' }, checksum: { type: 'string' }, unpack: { type: 'bool' }, exclude: { type: 'strings' }, parents: { type: 'bool' } }
    : { from: { type: 'string' }, chown: { type: 'string' }, chmod: { type: 'string' }, link: { type: 'bool' }, parents: { type: 'bool' }, exclude: { type: 'strings' } };
  const f = flagsOf(node, spec);
  if (node.args.length < 2) {
    throw new Bad(`${name} requires at least two arguments, but only one was provided. Destination could not be determined.`, `write ${name} <src>... <dest>`);
  }
  const dest = node.args[node.args.length - 1];
  if (!node.json && parseHeredocMarker(dest)) throw new Bad(`${name} cannot accept a heredoc as a destination`, `write ${name} <<EOF /path/to/file`);
  const sources: string[] = [];
  const contents: SourceContent[] = [];
  const byName = new Map(node.heredocs.map((h) => [h.name, h]));
  for (const src of node.args.slice(0, -1)) {
    const h = node.json ? undefined : parseHeredocMarker(src);
    if (h) {
      const body = byName.get(h.name)?.content ?? '';
      contents.push({ path: h.name, data: h.chomp ? chompHeredoc(body) : body, expand: h.expand });
    } else sources.push(src);
  }
  const from = f.strings.get('from');
  const chown = f.strings.get('chown');
  const chmod = f.strings.get('chmod');
  const checksum = f.strings.get('checksum');
  return {
    kind: name, node, range: node.range, sources, contents, dest,
    ...(from !== undefined ? { from } : {}), ...(chown !== undefined ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
    ...(checksum !== undefined ? { checksum } : {}),
    link: f.bools.get('link') ?? false, parents: f.bools.get('parents') ?? false, exclude: f.lists.get('exclude') ?? [],
    keepGitDir: f.bools.get('keep-git-dir') ?? false,
    ...(f.bools.has('unpack') ? { unpack: f.bools.get('unpack') } : {}),
  };
}

function parseDurationFlag(name: string, value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const d = parseGoDuration(value);
  if (d === 0) return 0;
  if (d < 1e6) throw new Bad(`Interval "${name}" cannot be less than 1ms`, `give --${name} as e.g. 30s`);
  return d;
}

function parseHealthcheck(node: Node): HealthcheckInstruction {
  if (node.args.length === 0) throw atLeastOne('HEALTHCHECK');
  let typ = node.args[0].toUpperCase();
  const args = node.args.slice(1);
  if (typ === 'NONE') {
    if (args.length !== 0) throw new Bad('HEALTHCHECK NONE takes no arguments', 'write HEALTHCHECK NONE alone to disable the base image healthcheck');
    noFlags(node);
    return { kind: 'HEALTHCHECK', node, range: node.range, health: { test: ['NONE'], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 } };
  }
  const f = flagsOf(node, { interval: { type: 'string' }, timeout: { type: 'string' }, 'start-period': { type: 'string' }, 'start-interval': { type: 'string' }, retries: { type: 'string' } });
  if (typ !== 'CMD') throw new Bad(`Unknown type "${typ}" in HEALTHCHECK (try CMD)`, 'write HEALTHCHECK [OPTIONS] CMD command, or HEALTHCHECK NONE');
  const cmd = node.json ? args : args.length ? [args.join(' ')] : [];
  if (cmd.length === 0) throw new Bad('Missing command after HEALTHCHECK CMD', 'write HEALTHCHECK CMD <command>');
  if (!node.json) typ = 'CMD-SHELL';
  let retries = 0;
  const r = f.strings.get('retries');
  if (r !== undefined && r !== '') {
    if (!/^[+-]?\d+$/.test(r) || Math.abs(Number(r)) > 2 ** 31 - 1) throw new Bad(`strconv.ParseInt: parsing "${r}": invalid syntax`, '--retries takes a whole number');
    retries = Number(r);
    if (retries < 0) throw new Bad(`--retries cannot be negative (${retries})`, '--retries takes a number >= 0');
  }
  return {
    kind: 'HEALTHCHECK', node, range: node.range,
    health: {
      test: [typ, ...cmd],
      interval: parseDurationFlag('interval', f.strings.get('interval')),
      timeout: parseDurationFlag('timeout', f.strings.get('timeout')),
      startPeriod: parseDurationFlag('start-period', f.strings.get('start-period')),
      startInterval: parseDurationFlag('start-interval', f.strings.get('start-interval')),
      retries,
    },
  };
}

function parseNode(node: Node, escapeToken: string): Instruction {
  const c = node.keyword.toUpperCase();
  const one = (): string => {
    noFlags(node);
    if (node.args.length !== 1) throw exactlyOne(c);
    return node.args[0];
  };
  switch (node.keyword) {
    case 'from': {
      const f = flagsOf(node, { platform: { type: 'string' } });
      const a = node.args;
      if (!(a.length === 1 || (a.length === 3 && a[1].toLowerCase() === 'as'))) {
        throw new Bad('FROM requires either one or three arguments', 'write FROM <image> [AS <name>]');
      }
      let stageName: string | undefined;
      if (a.length === 3) {
        stageName = a[2].toLowerCase();
        if (!STAGE_NAME.test(stageName)) throw new Bad(`invalid name for build stage: "${a[2]}", name can't start with a number or contain symbols`, 'stage names match [a-z][a-z0-9-_.]*');
      }
      const platform = f.strings.get('platform');
      return { kind: 'FROM', node, range: node.range, image: a[0], ...(stageName ? { stageName } : {}), ...(platform !== undefined ? { platform } : {}) };
    }
    case 'run': {
      const f = flagsOf(node, { mount: { type: 'strings' }, network: { type: 'string', default: 'default' }, security: { type: 'string', default: 'sandbox' }, device: { type: 'strings' } });
      const devices = (f.lists.get('device') ?? []).map((d) => parseDevice(d));
      const sd = shellDependent(node);
      if (sd.cmdLine.length === 0 && node.heredocs.length === 0 && !node.json) throw atLeastOne('RUN');
      const network = f.strings.get('network')!;
      if (network !== 'default' && network !== 'none' && network !== 'host') throw new Bad(`unsupported network mode "${network}"`, 'use --network=default, none or host');
      const security = f.strings.get('security')!;
      if (security !== 'sandbox' && security !== 'insecure') throw new Bad(`unsupported security mode "${security}"`, 'use --security=sandbox or insecure');
      const mounts = f.lists.get('mount') ?? [];
      const mountSpecs = mounts.map((m) => parseMount(m));
      const files = node.heredocs.map((h) => ({ name: h.name, data: h.chomp ? chompHeredoc(h.content) : h.content, content: h.content, chomp: h.chomp, expand: h.expand }));
      return { kind: 'RUN', node, range: node.range, ...sd, files, mounts, mountSpecs, network, security, ...(devices.length ? { devices } : {}) };
    }
    case 'cmd': noFlags(node); return { kind: 'CMD', node, range: node.range, ...shellDependent(node) };
    case 'entrypoint': noFlags(node); return { kind: 'ENTRYPOINT', node, range: node.range, ...shellDependent(node) };
    case 'env': case 'label': {
      noFlags(node);
      const pairs = node.pairs ?? [];
      if (pairs.length === 0) throw atLeastOne(c);
      for (const p of pairs) if (p.key === '') throw new Bad(`${c} names can not be blank`, 'write NAME=value');
      return { kind: c as 'ENV' | 'LABEL', node, range: node.range, pairs };
    }
    case 'maintainer': return { kind: 'MAINTAINER', node, range: node.range, maintainer: one() };
    case 'expose': noFlags(node); if (node.args.length === 0) throw atLeastOne('EXPOSE'); return { kind: 'EXPOSE', node, range: node.range, ports: node.args };
    case 'add': return parseCopyLike(node, true);
    case 'copy': return parseCopyLike(node, false);
    case 'volume': {
      noFlags(node);
      if (node.args.length === 0) throw atLeastOne('VOLUME');
      const volumes = node.args.map((v) => v.trim());
      if (volumes.some((v) => v === '')) throw new Bad('VOLUME specified can not be an empty string', 'write VOLUME /path');
      return { kind: 'VOLUME', node, range: node.range, volumes };
    }
    case 'user': return { kind: 'USER', node, range: node.range, user: one() };
    case 'workdir': return { kind: 'WORKDIR', node, range: node.range, path: one() };
    case 'stopsignal': return { kind: 'STOPSIGNAL', node, range: node.range, signal: one() };
    case 'arg': {
      noFlags(node);
      if (node.args.length === 0) throw atLeastOne('ARG');
      const args: ArgDecl[] = node.args.map((w) => {
        const i = w.indexOf('=');
        const key = i < 0 ? w : w.slice(0, i);
        if (key === '') throw new Bad('ARG names can not be blank', 'write ARG NAME or ARG NAME=default');
        return i < 0 ? { key } : { key, value: w.slice(i + 1) };
      });
      return { kind: 'ARG', node, range: node.range, args };
    }
    case 'onbuild': {
      noFlags(node);
      if (!node.sub) throw atLeastOne('ONBUILD');
      const t = node.sub.keyword.toUpperCase();
      // BuildKit's parseOnBuild: its own message for chaining, the generic one for FROM and MAINTAINER.
      if (t === 'ONBUILD') throw new Bad('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', 'ONBUILD takes any other instruction, e.g. ONBUILD RUN make');
      if (t === 'MAINTAINER' || t === 'FROM') throw new Bad(`${t} isn't allowed as an ONBUILD trigger`, 'ONBUILD takes any other instruction, e.g. ONBUILD RUN make');
      const trigger = parseNode(node.sub, escapeToken);
      const expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      return { kind: 'ONBUILD', node, range: node.range, expression, trigger };
    }
    case 'healthcheck': return parseHealthcheck(node);
    case 'shell': {
      noFlags(node);
      if (node.args.length === 0) throw atLeastOne('SHELL');
      if (!node.json) throw new Bad('SHELL requires the arguments to be in JSON form', 'write SHELL ["executable", "parameters"]');
      return { kind: 'SHELL', node, range: node.range, shell: node.args };
    }
    default: {
      const s = suggest(node.rawKeyword, INSTRUCTION_NAMES);
      throw new Bad(`unknown instruction: ${node.rawKeyword}`, s ? `did you mean ${s}?` : `instructions are ${INSTRUCTION_NAMES.join(', ')}`);
    }
  }
}

/** Turns one AST node into a typed instruction; errors carry `file:line:col`. */
export function parseInstruction(node: Node, file = 'Dockerfile', escapeToken = '\\'): Instruction {
  try {
    return parseNode(node, escapeToken);
  } catch (e) {
    if (e instanceof DockerfileError) throw e;
    if (e instanceof Bad) throw new DockerfileError(file, node.range, e.message, node.original, e.hint);
    if (e instanceof UserError) throw new DockerfileError(file, node.range, e.message, node.original, e.hint);
    throw e;
  }
}

/** One `FROM` and the instructions up to the next `FROM`. */
export interface StageDef {
  index: number;
  from: FromInstruction;
  /** Lowercased stage name, if `AS name` was given. */
  name?: string;
  /** Comment above FROM that starts with the stage name (BuildKit's doc-comment rule). */
  description: string;
  instructions: Instruction[];
}

export interface DockerfileDefinition {
  file: string;
  escapeToken: string;
  directives: Directives;
  /** ARG instructions before the first FROM. */
  metaArgs: ArgInstruction[];
  stages: StageDef[];
  /** The parser's warnings (empty continuation lines: shown by the build checks, not here). */
  warnings: string[];
  /** What every build should say about this Dockerfile (a `# syntax=` slipway cannot honour). */
  notices: string[];
  /** Where empty continuation lines were found (the instruction's last line), for the build checks. */
  emptyContinuationLines: number[];
}

/** BuildKit's getComment: the comment line that starts with `name ` describes `name`. */
export function docComment(comments: string[], name: string | undefined): string {
  if (!name) return '';
  for (const line of comments) if (line.startsWith(name + ' ')) return line.slice(name.length + 1);
  return '';
}

/** A frontend image that is BuildKit's own Dockerfile frontend (docker/dockerfile[-upstream], any tag or digest). */
export function isDockerfileFrontend(ref: string): boolean {
  return /^(docker\.io\/)?docker\/dockerfile(-upstream)?(:[\w][\w.-]*)?(@sha256:[0-9a-f]{64})?$/.test(ref);
}

/** Parses a whole Dockerfile into global ARGs and stages. */
export function parseDefinition(text: string, file = 'Dockerfile'): DockerfileDefinition {
  const ast = parseDockerfile(text, file);
  const metaArgs: ArgInstruction[] = [];
  const stages: StageDef[] = [];
  for (const node of ast.nodes) {
    const ins = parseInstruction(node, file, ast.escapeToken);
    if (ins.kind === 'FROM') {
      stages.push({ index: stages.length, from: ins, name: ins.stageName, description: docComment(node.comments, ins.stageName), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.kind !== 'ARG') {
        throw new DockerfileError(file, node.range, `no build stage in current context`, node.original, 'put FROM first; only ARG may come before the first FROM');
      }
      metaArgs.push(ins);
    } else {
      stages[stages.length - 1].instructions.push(ins);
    }
  }
  if (stages.length === 0) {
    const last = ast.nodes[ast.nodes.length - 1];
    throw new DockerfileError(file, last.range, 'no build stage in current context', last.original, 'add a FROM instruction');
  }
  const notices: string[] = [];
  // `# syntax=` naming another frontend image: slipway reads the Dockerfile itself, so say once
  // that the image is not run (BuildKit's own docker/dockerfile frontends are what slipway follows).
  const syntax = ast.directives.syntax?.trim();
  if (syntax && !isDockerfileFrontend(syntax)) notices.push(`${file}: # syntax=${syntax} names a frontend image that slipway cannot run; the Dockerfile is read as docker/dockerfile:1`);
  return { file, escapeToken: ast.escapeToken, directives: ast.directives, metaArgs, stages, warnings: ast.warnings, notices, emptyContinuationLines: ast.emptyContinuationLines };
}

/**
 * Parses one ONBUILD trigger from a base image's config (`OnBuild` entries) as BuildKit does when
 * a stage starts from that image: a fresh parse with the default escape token, one instruction.
 */
export function parseOnbuildTrigger(expression: string, file = 'Dockerfile'): Instruction {
  const ast = parseDockerfile(expression, `${file} (ONBUILD trigger)`);
  if (ast.nodes.length !== 1) {
    throw new DockerfileError(file, ast.nodes[0].range, 'onbuild trigger should be a single expression', expression, 'the base image has a malformed ONBUILD entry');
  }
  const ins = parseInstruction(ast.nodes[0], `${file} (ONBUILD trigger)`, ast.escapeToken);
  if (ins.kind === 'ONBUILD' || ins.kind === 'FROM' || ins.kind === 'MAINTAINER') {
    throw new DockerfileError(file, ins.range, `${ins.kind} isn't allowed as an ONBUILD trigger`, expression, 'the base image has a malformed ONBUILD entry');
  }
  return ins;
}

// Fuzzing (fast-check): random and mutated Dockerfiles through parse → instructions → plan →
// per-instruction evaluation, random words through the lexer, random .dockerignore patterns.
// The only acceptable failure is a UserError; runs are bounded so the file takes a few seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { planBuild, StageEvaluator, PatternMatcher, parseDockerignore, formatOutline, formatTargets } from '../../src/dockerfile/index.ts';
import { ShellLex } from '../../src/dockerfile/shell-lex.ts';
import { UserError } from '../../src/errors.ts';

const amd64 = { os: 'linux', architecture: 'amd64' };

/** Runs the whole frontend; returns normally or throws only UserError. */
function pipeline(text: string): void {
  try {
    const plan = planBuild({ dockerfile: text, targetPlatform: amd64, buildPlatform: { os: 'linux', architecture: 'arm64' }, buildArgs: { A: 'x y', HTTP_PROXY: 'p' } });
    formatTargets(plan);
    formatOutline(plan);
    for (const s of plan.stages) {
      const ev = new StageEvaluator(plan, s, { env: ['PATH=/bin', 'HOME=/root'] });
      for (const i of s.instructions) ev.step(i);
    }
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    assert.ok(e.message.length > 0);
  }
}

const seeds = [
  '# syntax=docker/dockerfile:1\nARG BASE=alpine\nFROM ${BASE} AS build\nRUN --mount=type=cache,target=/c echo hi \\\n  && echo there\nCOPY --from=build --chown=1:1 a b /c/\n',
  'FROM a\nENV A=1 B="two words" C=$A\nLABEL x=y\nWORKDIR /app\nUSER 1000\nEXPOSE 80/tcp 443\nVOLUME ["/data"]\n',
  'FROM a AS x\nRUN <<EOF\necho $A\nEOF\nCOPY <<-"E" /f\n\tbody\n\tE\nHEALTHCHECK --interval=5s CMD true\nSHELL ["/bin/bash", "-c"]\nCMD ["a"]\nENTRYPOINT b c\nSTOPSIGNAL SIGTERM\nONBUILD RUN x\n',
  '# escape=`\nFROM mcr/x\nRUN dir c:\\ `\n  /s\nARG V=${A:-d}\nADD --checksum=sha256:00 https://x/y /z\n',
  'ARG V=1\nFROM --platform=$BUILDPLATFORM img:$V AS a\nARG TARGETARCH\nRUN --mount=type=secret,id=s,required --mount=type=ssh echo ${TARGETARCH%%64}\nFROM scratch\nCOPY --from=a /x /y\nCOPY --from=0 /x /z\n',
];

const alphabet = ['\\', '`', '$', '{', '}', '"', "'", '<<', '<<-', 'EOF', '\n', ' ', '\t', '#', '=', '--', '[', ']', ',', ':', '-', '+', '?', '%', '/', '*', 'FROM ', 'RUN ', 'COPY ', 'ARG ', 'ENV ', 'ONBUILD ', 'a', '0', '\r'];
const token = fc.constantFrom(...alphabet);

test('fuzz: random Dockerfile-like text only ever raises UserError', () => {
  fc.assert(fc.property(fc.array(token, { maxLength: 60 }), (toks) => pipeline(toks.join(''))), { numRuns: 3000, seed: 20240501 });
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => pipeline(s)), { numRuns: 1500 });
});

test('fuzz: structured random stages (keyword + flags + random words) only raise UserError, and many plan fine', () => {
  const kw = fc.constantFrom('RUN', 'CMD', 'LABEL', 'MAINTAINER', 'EXPOSE', 'ENV', 'ADD', 'COPY', 'ENTRYPOINT', 'VOLUME', 'USER', 'WORKDIR', 'ARG', 'ONBUILD', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'FROM', 'run', 'BOGUS');
  const flag = fc.constantFrom('--mount=type=cache,target=/x', '--mount=type=secret,id=$A', '--mount=type=bind,from=0,target=/s', '--from=0', '--chown=$A', '--chmod=755', '--link',
    '--network=none', '--interval=1s', '--retries=2', '--platform=$BUILDPLATFORM', '--exclude=*.md', '--parents', '--checksum=sha256:1', '--bogus', '--mount=type=tmpfs,target=/t,size=1m');
  const wordTok = fc.constantFrom('a', '$A', '${A:-b}', '"q w"', "'s'", '[', '"x"', ']', ',', '=', '/p', '80', 'CMD', 'NONE', '<<EOF', 'AS', 'n1', '\\', '${A#x}', '${P/a/b}', '9/udp');
  const line = fc.tuple(kw, fc.array(flag, { maxLength: 2 }), fc.array(wordTok, { maxLength: 5 })).map(([k, f, w]) => [k, ...f, ...w].join(' '));
  let planned = 0;
  fc.assert(fc.property(fc.array(line, { maxLength: 12 }), (lines) => {
    const text = 'ARG A=1\nFROM alpine AS first\n' + lines.join('\n') + '\nEOF\n';
    try {
      planBuild({ dockerfile: text, targetPlatform: amd64, buildPlatform: amd64 });
      planned++;
    } catch (e) { if (!(e instanceof UserError)) throw e; }
    pipeline(text);
  }), { numRuns: 8000, seed: 1234 });
  assert.ok(planned > 20, `only ${planned} inputs got past planning`);
});

test('fuzz: mutated valid Dockerfiles only ever raise UserError', () => {
  const mutation = fc.record({ pos: fc.nat(), del: fc.nat({ max: 4 }), ins: fc.array(token, { maxLength: 3 }) });
  fc.assert(fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 6 }), (seed, muts) => {
    let text = seed;
    for (const m of muts) {
      const p = m.pos % (text.length + 1);
      text = text.slice(0, p) + m.ins.join('') + text.slice(p + m.del);
    }
    pipeline(text);
  }), { numRuns: 4000, seed: 42 });
});

test('fuzz: the lexer on random words, with random options, only raises UserError', () => {
  const env = new Map([['A', 'x y'], ['EMPTY', ''], ['P', '/usr/local/bin/a.tar.gz']]);
  const word = fc.array(fc.constantFrom('$', '{', '}', 'A', 'P', 'EMPTY', ':', '-', '+', '?', '#', '%', '/', '*', '\\', '`', '"', "'", ' ', 'x', '[', '.'), { maxLength: 30 }).map((a) => a.join(''));
  fc.assert(fc.property(word, fc.boolean(), fc.boolean(), fc.boolean(), fc.constantFrom('\\', '`'), (w, rq, re, su, esc) => {
    try {
      const r = new ShellLex({ rawQuotes: rq, rawEscapes: re, skipUnsetEnv: su, escapeToken: esc }).process(w, env);
      assert.equal(typeof r.result, 'string');
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
    }
  }), { numRuns: 6000, seed: 7 });
});

test('fuzz: random .dockerignore patterns only raise UserError and matching never throws', () => {
  const pat = fc.array(fc.constantFrom('*', '**', '?', '[', ']', '^', '!', '/', '\\', 'a', 'b', '.', '-', ' ', '#', '\n'), { maxLength: 40 }).map((a) => a.join(''));
  const path = fc.array(fc.constantFrom('a', 'b', '.', '/', '..', 'ab'), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
  fc.assert(fc.property(pat, fc.array(path, { maxLength: 5 }), (p, paths) => {
    let m: PatternMatcher;
    try { m = new PatternMatcher(parseDockerignore(p)); } catch (e) {
      if (!(e instanceof UserError)) throw e;
      return;
    }
    for (const x of paths) {
      assert.equal(typeof m.matches(x), 'boolean');
      m.exceptionCouldMatchBelow(x);
    }
  }), { numRuns: 4000, seed: 99 });
});

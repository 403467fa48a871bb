// Stage graph, ARG scoping and per-instruction evaluation, from docs.docker.com/reference/dockerfile
// ("FROM", "Understand how ARG and FROM interact", "ARG": "Scope", "Using ARG variables",
// "Predefined ARGs", "Automatic platform ARGs in the global scope", "ENV", "WORKDIR",
// "Environment replacement", "Here-documents") and BuildKit's history strings.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBuild, StageEvaluator, DockerfileError, parseOnbuildTrigger, type BuildPlan, type EvaluatedStep } from '../../src/dockerfile/index.ts';
import type { PlanOptions } from '../../src/dockerfile/stages.ts';
import { UserError } from '../../src/errors.ts';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };
const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
const plan = (dockerfile: string, o: Partial<PlanOptions> = {}): BuildPlan => planBuild({ dockerfile, targetPlatform: amd64, buildPlatform: amd64, ...o });
/** Evaluates every instruction of the target stage. */
const run = (p: BuildPlan, baseEnv: string[] = [], stage = p.target): { ev: StageEvaluator; steps: EvaluatedStep[] } => {
  const ev = new StageEvaluator(p, stage, { env: baseEnv });
  return { ev, steps: stage.instructions.map((i) => ev.step(i)) };
};
const createdBy = (df: string, o: Partial<PlanOptions> = {}, env: string[] = []): (string | undefined)[] => run(plan(df, o), env).steps.map((s) => s.createdBy);

test('Understand how ARG and FROM interact: global ARG in FROM, re-declared ARG inherits the value', () => {
  const p = plan('ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n');
  assert.deepEqual(p.allStages.map((s) => s.baseName), ['base:latest', 'extras:latest']);
  const q = plan('ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\nRUN echo $VERSION > image_version\n');
  const { ev, steps } = run(q);
  assert.equal(ev.env.get('VERSION'), 'latest');
  assert.equal(steps[1].createdBy, 'RUN |1 VERSION=latest /bin/sh -c echo $VERSION > image_version # buildkit');
  const r = plan('ARG VERSION=latest\nFROM busybox\nRUN echo $VERSION\n');
  assert.equal(run(r).ev.env.has('VERSION'), false, 'global ARG is not visible in a stage without re-declaring it');
});

test('ARG Scope: a variable is usable only after its ARG line (docs USER ${username:-some_user} example)', () => {
  const df = 'FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\n';
  assert.deepEqual(createdBy(df, { buildArgs: { username: 'what_user' } }), ['USER some_user', 'ARG username=what_user', 'USER what_user']);
  assert.deepEqual(createdBy(df), ['USER some_user', 'ARG username', 'USER ']);
});

test('Using ARG variables: ENV overrides ARG (docs CONT_IMG_VER examples)', () => {
  const df = 'FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nRUN echo $CONT_IMG_VER\n';
  const { ev, steps } = run(plan(df, { buildArgs: { CONT_IMG_VER: 'v2.0.1' } }));
  assert.equal(ev.env.get('CONT_IMG_VER'), 'v1.0.0');
  assert.equal(steps[2].createdBy, 'RUN |1 CONT_IMG_VER=v1.0.0 /bin/sh -c echo $CONT_IMG_VER # buildkit');
  assert.deepEqual(steps[2].env, ['CONT_IMG_VER=v1.0.0']);
  assert.equal(steps[1].env, undefined, 'only RUN steps carry an env snapshot');
  const df2 = 'FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\n';
  assert.equal(run(plan(df2)).ev.imageEnv.get('CONT_IMG_VER'), 'v1.0.0');
  assert.equal(run(plan(df2, { buildArgs: { CONT_IMG_VER: 'v2.0.1' } })).ev.imageEnv.get('CONT_IMG_VER'), 'v2.0.1');
});

test('ARG Default values: build-arg beats default; default expands earlier variables; ARG is not in the image env', () => {
  const df = 'FROM busybox\nARG user1=someuser\nARG buildno=1\nARG both=$user1-$buildno\n';
  const { ev, steps } = run(plan(df, { buildArgs: { buildno: '7' } }));
  assert.deepEqual(steps.map((s) => s.createdBy), ['ARG user1=someuser', 'ARG buildno=7', 'ARG both=someuser-7']);
  assert.equal(ev.imageEnv.size, 0);
  assert.deepEqual(steps[2].expanded, { kind: 'ARG', args: [{ key: 'both', value: 'someuser-7' }] });
});

test('Automatic platform ARGs in the global scope: usable in FROM; inside a stage only after ARG', () => {
  const df = 'FROM --platform=$BUILDPLATFORM golang AS build\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\nRUN echo $TARGETARCH\nFROM alpine\nRUN echo $TARGETARCH\n';
  const p = plan(df, { targetPlatform: armv7, buildPlatform: amd64, target: 'build' });
  assert.deepEqual(p.target.platform, amd64);
  assert.equal(p.target.platformExplicit, true);
  const { ev } = run(p);
  assert.deepEqual(Object.fromEntries(ev.env), {
    TARGETPLATFORM: 'linux/arm/v7', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7',
    BUILDPLATFORM: 'linux/amd64', BUILDOS: 'linux', BUILDARCH: 'amd64', BUILDVARIANT: '',
  });
  const last = plan(df, { targetPlatform: arm64 });
  assert.deepEqual(last.target.platform, arm64);
  assert.equal(run(last).ev.env.has('TARGETARCH'), false);
  assert.deepEqual(plan('FROM --platform=linux/${TARGETARCH} alpine\n', { targetPlatform: arm64 }).target.platform, arm64);
});

test('Predefined ARGs: proxy build args reach RUN but not history unless declared; never "unused"', () => {
  const p = plan('FROM alpine\nRUN apk add curl\n', { buildArgs: { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' } });
  const { ev, steps } = run(p);
  assert.equal(steps[0].createdBy, 'RUN /bin/sh -c apk add curl # buildkit');
  assert.deepEqual(Object.fromEntries(ev.proxyEnv), { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' });
  assert.deepEqual(p.warnings, []);
  const declared = plan('FROM alpine\nARG HTTP_PROXY\nRUN x\n', { buildArgs: { HTTP_PROXY: 'http://p' } });
  assert.equal(run(declared).steps[1].createdBy, 'RUN |1 HTTP_PROXY=http://p /bin/sh -c x # buildkit');
});

test('unused build args are returned as a warning', () => {
  const p = plan('ARG USED\nFROM alpine\nARG ALSO\n', { buildArgs: { USED: '1', ALSO: '2', NOPE: '3', ZED: '4' } });
  assert.deepEqual(p.warnings, ['One or more build-args [NOPE ZED] were not consumed']);
});

test('ENV: both forms; values see the env before the instruction (docs abc/def/ghi example)', () => {
  const df = 'FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\nENV MY_DOG=Rex\\ The\\ Dog MY_NAME="John Doe"\nENV MY_VAR my-value\n';
  const { ev, steps } = run(plan(df));
  assert.deepEqual(Object.fromEntries(ev.imageEnv), { abc: 'bye', def: 'hello', ghi: 'bye', MY_DOG: 'Rex The Dog', MY_NAME: 'John Doe', MY_VAR: 'my-value' });
  assert.deepEqual(steps.map((s) => s.createdBy), ['ENV abc=hello', 'ENV abc=bye def=hello', 'ENV ghi=bye', 'ENV MY_DOG=Rex The Dog MY_NAME=John Doe', 'ENV MY_VAR=my-value']);
  assert.ok(steps.every((s) => s.emptyLayer));
});

test('Environment replacement: docs example (WORKDIR ${FOO}, ADD . $FOO, COPY \\$FOO /quux) and base image env', () => {
  const df = 'FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nADD . $FOO\nCOPY \\$FOO /quux\nWORKDIR $GOPATH/src\n';
  const { steps } = run(plan(df), ['GOPATH=/go']);
  assert.deepEqual(steps.map((s) => s.createdBy), ['ENV FOO=/bar', 'WORKDIR /bar', 'ADD . /bar # buildkit', 'COPY $FOO /quux # buildkit', 'WORKDIR /go/src']);
});

test('WORKDIR: relative paths join the previous (docs /a b c → /a/b/c); unset variable expands empty', () => {
  const { ev, steps } = run(plan('FROM busybox\nWORKDIR /a\nWORKDIR b\nWORKDIR c\nENV DIRPATH=/path\nWORKDIR $DIRPATH/$DIRNAME\nWORKDIR /\n'));
  assert.deepEqual(steps.map((s) => s.createdBy), ['WORKDIR /a', 'WORKDIR /a/b', 'WORKDIR /a/b/c', 'ENV DIRPATH=/path', 'WORKDIR /path', 'WORKDIR /']);
  assert.deepEqual(steps.map((s) => s.emptyLayer), [false, false, false, true, false, true]);
  assert.equal(ev.workingDir, '/');
});

test('history created_by strings match BuildKit for every instruction', () => {
  const df = [
    'FROM alpine', 'LABEL version="1.0" "com.example.vendor"="ACME Inc"', 'MAINTAINER me', 'EXPOSE 80 443/udp 8000-8001/tcp',
    'VOLUME ["/data", "/logs"]', 'USER 1000:1000', 'STOPSIGNAL SIGTERM', 'HEALTHCHECK --interval=5m --timeout=3s CMD curl -f http://localhost/ || exit 1',
    'HEALTHCHECK NONE', 'HEALTHCHECK --retries=65 CMD ["true"]', 'CMD ["sh"]', 'CMD echo "hi"', 'ENTRYPOINT ["/bin/app", "--flag"]',
    'SHELL ["/bin/bash", "-c"]', 'RUN echo hi', 'CMD echo bash', 'ONBUILD RUN make', 'COPY --chown=1:2 --chmod=644 --link --from=alpine a b /app/',
    'COPY --parents ./x/./y /z', 'COPY <<EOF /etc/x', 'hello', 'EOF', 'RUN ["echo", "a b"]', 'ARG A=1 B',
  ].join('\n');
  assert.deepEqual(createdBy(df), [
    'LABEL version=1.0 com.example.vendor=ACME Inc', 'MAINTAINER me', 'EXPOSE map[443/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{}]',
    'VOLUME [/data /logs]', 'USER 1000:1000', 'STOPSIGNAL SIGTERM',
    'HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/ || exit 1"] "5m0s" "3s" "0s" "0s" \'\\x00\'}',
    'HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}', 'HEALTHCHECK &{["CMD" "true"] "0s" "0s" "0s" "0s" \'A\'}',
    'CMD ["sh"]', 'CMD ["/bin/sh" "-c" "echo \\"hi\\""]', 'ENTRYPOINT ["/bin/app" "--flag"]', 'SHELL [/bin/bash -c]',
    'RUN /bin/bash -c echo hi # buildkit', 'CMD ["/bin/bash" "-c" "echo bash"]', undefined,
    'COPY --chown=1:2 --chmod=644 a b /app/ # buildkit', 'COPY --parents ./x/./y /z # buildkit', 'COPY <<EOF /etc/x # buildkit',
    'RUN echo a b # buildkit', 'ARG A=1 B',
  ]);
});

test('Here-documents: RUN heredoc argv (plain, shebang, complex) and expanded COPY heredoc', () => {
  const df = 'FROM alpine\nENV FOO=bar\nRUN <<EOF\necho "$FOO"\nEOF\nRUN <<EOF\n#!/usr/bin/env python\nprint("hi")\nEOF\nRUN <<EOT bash\n  set -ex\nEOT\nRUN <<-EOF\n\techo tab\n\tEOF\nCOPY <<EOF <<"RAW" /x/\n$FOO "q"\nEOF\n$FOO\nRAW\n';
  const { steps } = run(plan(df));
  const r1 = steps[1].expanded;
  assert.ok(r1.kind === 'RUN');
  assert.deepEqual(r1.args, ['/bin/sh', '-c', 'echo "$FOO"\n']);
  const r2 = steps[2].expanded;
  assert.ok(r2.kind === 'RUN');
  assert.deepEqual(r2.args, ['/bin/sh', '-c', '/dev/pipes/EOF']);
  assert.deepEqual(r2.inlineFiles, [{ path: '/dev/pipes/EOF', data: '#!/usr/bin/env python\nprint("hi")\n', mode: 0o755 }]);
  const r3 = steps[3].expanded;
  assert.ok(r3.kind === 'RUN');
  assert.deepEqual(r3.args, ['/bin/sh', '-c', '<<EOT bash\n  set -ex\nEOT']);
  const r4 = steps[4].expanded;
  assert.ok(r4.kind === 'RUN' && r4.args[2] === 'echo tab\n');
  const c = steps[5].expanded;
  assert.ok(c.kind === 'COPY');
  assert.deepEqual(c.contents.map((x) => x.data), ['bar "q"\n', '$FOO\n']);
  assert.equal(steps[5].createdBy, 'COPY <<EOF <<RAW /x/ # buildkit');
});

test('RUN --mount values are expanded at dispatch with BuildKit defaults filled in', () => {
  const df = 'FROM alpine\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=c-${TARGETARCH:-x} --mount=type=ssh --mount=type=ssh,id=other true\n';
  const { steps } = run(plan(df));
  const r = steps[1].expanded;
  assert.ok(r.kind === 'RUN');
  assert.deepEqual(r.mounts.map((m) => [m.type, m.target, m.id]), [['cache', '/root/.cache', 'c-x'], ['ssh', '/run/buildkit/ssh_agent.0', 'default'], ['ssh', '/run/buildkit/ssh_agent.1', 'other']]);
});

test('COPY --from and --mount from= are never expanded (BuildKit: moby/buildkit#2374, #2089)', () => {
  const p = plan('ARG SRC=alpine\nFROM scratch\nARG SRC\nCOPY --from=$SRC /a /b\nRUN --mount=from=$SRC,target=/m,source=$SRC true\n');
  assert.deepEqual(p.target.imageDependencies, ['$SRC']);
  const steps = run(p).steps;
  const c = steps[1].expanded;
  assert.ok(c.kind === 'COPY' && c.from === '$SRC');
  const r = steps[2].expanded;
  assert.ok(r.kind === 'RUN' && r.mounts[0].from === '$SRC' && r.mounts[0].source === 'alpine');
});

test('EXPOSE/VOLUME/STOPSIGNAL/COPY --chmod values are validated after expansion', () => {
  const bad: [string, RegExp][] = [
    ['EXPOSE 80/ftp', /invalid proto: ftp/], ['EXPOSE abc', /invalid containerPort: abc/], ['EXPOSE 70000', /invalid containerPort/],
    ['STOPSIGNAL SIGNOPE', /Invalid signal: SIGNOPE/], ['COPY --chmod=999 a b', /invalid chmod parameter: '999'/],
    ['ADD --checksum=sha256:x a b', /checksum requires HTTP\(S\) or Git sources/],
    ['ADD --checksum=sha256:x https://a/x https://a/y /d', /checksum can't be specified for multiple sources/],
    ['WORKDIR ${A:?need A}', /A: need A/], ['VOLUME $NOPE', /VOLUME specified can not be an empty string/],
  ];
  for (const [line, re] of bad) {
    const p = plan(`FROM alpine\n${line}\n`);
    assert.throws(() => run(p), (e: unknown) => e instanceof DockerfileError && re.test(e.message) && e.message.startsWith('Dockerfile:2:1: '), line);
  }
  assert.deepEqual(createdBy('FROM a\nENV P="8080 9090"\nEXPOSE $P\nSTOPSIGNAL 9\nSTOPSIGNAL sigrtmin+3\n'), ['ENV P=8080 9090', 'EXPOSE map[8080/tcp:{} 9090/tcp:{}]', 'STOPSIGNAL 9', 'STOPSIGNAL sigrtmin+3']);
});

test('FROM <stage>, COPY --from=<stage|index|image>, RUN --mount=from=: dependencies and needed stages only', () => {
  const df = [
    'FROM alpine AS base', 'FROM base AS build', 'RUN --mount=type=bind,from=assets,target=/a true',
    'FROM busybox AS assets', 'FROM scratch AS unused', 'FROM scratch AS final', 'COPY --from=build /x /x',
    'COPY --from=2 /y /y', 'COPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf', 'COPY --from=BASE /z /z',
  ].join('\n');
  const p = plan(df);
  assert.equal(p.target.name, 'final');
  assert.deepEqual(p.stages.map((s) => s.name), ['base', 'assets', 'build', 'final']);
  assert.deepEqual(p.target.dependencies, [0, 1, 2]);
  assert.deepEqual(p.target.imageDependencies, ['nginx:latest']);
  assert.deepEqual(p.allStages[1].base, { kind: 'stage', index: 0 });
  assert.deepEqual(p.allStages[4].base, { kind: 'scratch' });
  assert.deepEqual(p.allStages[0].base, { kind: 'image', ref: 'alpine' });
  assert.deepEqual(plan(df, { target: 'BUILD' }).stages.map((s) => s.name), ['base', 'assets', 'build']);
});

test('stage graph errors: missing target, cycle, duplicate name, bad index, blank base', () => {
  const err = (df: string, re: RegExp, o: Partial<PlanOptions> = {}): void => {
    assert.throws(() => plan(df, o), (e: unknown) => e instanceof UserError && re.test(e.message) && !!e.hint, re.source);
  };
  err('FROM a AS one\n', /target stage "two" could not be found/, { target: 'two' });
  err('FROM b AS a\nFROM a AS b\n', /circular dependency detected on stage/);
  err('FROM alpine AS x\nCOPY --from=y / /\nFROM alpine AS y\nCOPY --from=x / /\n', /circular dependency/);
  err('FROM a AS x\nFROM b AS X\n', /Dockerfile:2:1: duplicate stage name "x"/);
  err('FROM a\nCOPY --from=5 / /\n', /Dockerfile:2:1: invalid stage index 5/);
  err('ARG IMG\nFROM $IMG\n', /Dockerfile:2:1: base name \(\$IMG\) should not be blank/);
  err('FROM --platform=linux/amd64/v2/x a\n', /failed to parse platform/);
});

test('ONBUILD triggers are kept for the engine (expression + parsed trigger), never run here', () => {
  const p = plan('FROM alpine\nONBUILD ADD . /app/src\nONBUILD RUN /usr/local/bin/python-build --dir /app/src\n');
  const steps = run(p).steps;
  assert.deepEqual(steps.map((s) => s.expanded), [{ kind: 'ONBUILD', expression: 'ADD . /app/src' }, { kind: 'ONBUILD', expression: 'RUN /usr/local/bin/python-build --dir /app/src' }]);
  const o = p.target.instructions[0];
  assert.ok(o.kind === 'ONBUILD' && o.trigger.kind === 'ADD');
});

test('ONBUILD: a base image trigger is parsed alone and evaluated in the child stage', () => {
  const t = parseOnbuildTrigger('COPY --chown=app . /app/src');
  assert.ok(t.kind === 'COPY' && t.chown === 'app');
  const p = plan('FROM base\nENV A=1\n');
  const ev = new StageEvaluator(p, p.target, { env: ['X=/opt'] });
  assert.equal(ev.step(parseOnbuildTrigger('RUN echo $X')).createdBy, 'RUN /bin/sh -c echo $X # buildkit');
  assert.equal(ev.step(parseOnbuildTrigger('WORKDIR $X')).createdBy, 'WORKDIR /opt');
  assert.throws(() => parseOnbuildTrigger('RUN a\nRUN b'), /single expression/);
  assert.throws(() => parseOnbuildTrigger('FROM x'), /isn't allowed as an ONBUILD trigger/);
});

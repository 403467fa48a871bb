// Instruction table: every instruction and flag from docs.docker.com/reference/dockerfile, with
// BuildKit's argument rules and error messages (Dockerfile:LINE:COL + text + hint).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDefinition, type Instruction } from '../../src/dockerfile/instructions.ts';
import { DockerfileError } from '../../src/dockerfile/errors.ts';
import { parseMount, mountWithDefaults, parseGoDuration, formatGoDuration } from '../../src/dockerfile/flags.ts';

const ins = (line: string): Instruction => parseDefinition(`FROM alpine\n${line}\n`).stages[0].instructions[0];
const fails = (line: string, re: RegExp): void => {
  assert.throws(() => parseDefinition(`FROM alpine\n${line}\n`), (e: unknown) => {
    assert.ok(e instanceof DockerfileError, String(e));
    assert.match(e.message, re);
    assert.match(e.message, /^Dockerfile:2:1: /);
    assert.ok(e.message.includes(line.split('\n')[0]), 'shows the offending text');
    assert.ok(e.hint && e.hint.length > 0, 'has a hint');
    return true;
  }, line);
};

test('FROM: image, AS name (lowercased), --platform', () => {
  const d = parseDefinition('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\nFROM scratch\n');
  assert.deepEqual([d.stages[0].from.image, d.stages[0].name, d.stages[0].from.platform], ['golang:1.22', 'build', '$BUILDPLATFORM']);
  assert.equal(d.stages[1].name, undefined);
  for (const [text, re] of [
    ['FROM', /FROM requires either one or three arguments/], ['FROM a b', /one or three/], ['FROM a AS', /one or three/],
    ['FROM a AS 1abc', /invalid name for build stage: "1abc"/], ['FROM a AS b$c', /invalid name for build stage/],
    ['FROM --plattform=x a', /unknown flag: plattform/],
  ] as const) assert.throws(() => parseDefinition(text + '\n'), re);
});

test('FROM: only ARG may precede the first FROM', () => {
  const d = parseDefinition('ARG A=1 B\nFROM x\n');
  assert.deepEqual(d.metaArgs[0].args, [{ key: 'A', value: '1' }, { key: 'B' }]);
  assert.throws(() => parseDefinition('RUN x\nFROM a\n'), /Dockerfile:1:1: no build stage in current context/);
  assert.throws(() => parseDefinition('ARG A\n'), /no build stage in current context/);
});

test('RUN --device (repeatable): a CDI name, optional unless required; BuildKit\'s parse rules', () => {
  const r = ins('RUN --device=example.com/gpu=0,required --device=name=vendor.com/x,required=false --device=class true');
  assert.ok(r.kind === 'RUN');
  assert.deepEqual(r.devices, [{ name: 'example.com/gpu=0', required: true }, { name: 'vendor.com/x', required: false }, { name: 'class', required: false }]);
  assert.equal(ins('RUN true').kind === 'RUN' && 'devices' in ins('RUN true'), false, 'no --device: no devices field');
  fails('RUN --device=a,name=b true', /device name already set to a/);
  fails('RUN --device=a,b true', /invalid field 'b' must be a key=value pair/);
});

test('RUN: shell form, exec form, --mount (repeatable), --network, --security', () => {
  const r = ins('RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=secret,id=aws --network=none --security=insecure go build');
  assert.ok(r.kind === 'RUN');
  assert.deepEqual(r.cmdLine, ['go build']);
  assert.equal(r.prependShell, true);
  assert.equal(r.mounts.length, 2);
  assert.deepEqual(r.mountSpecs[0], { type: 'cache', target: '/root/.cache/go-build' });
  assert.equal(r.network, 'none');
  assert.equal(r.security, 'insecure');
  const e = ins('RUN ["/bin/bash", "-c", "echo hello"]');
  assert.ok(e.kind === 'RUN' && !e.prependShell && e.cmdLine.length === 3 && e.network === 'default' && e.security === 'sandbox');
  fails('RUN', /RUN requires at least one argument/);
  fails('RUN --network=bridge x', /unsupported network mode "bridge"/);
  fails('RUN --security=weird x', /unsupported security mode "weird"/);
  fails('RUN --mount x', /missing a value on flag: mount/);
  fails('RUN --mnt=type=bind x', /unknown flag: mnt/);
  fails('RUN --network=none --network=host x', /duplicate flag specified: network/);
});

test('RUN --mount: every type and option, with BuildKit defaults', () => {
  const d = (s: string) => mountWithDefaults(parseMount(s));
  assert.deepEqual(d('target=/src'), { type: 'bind', target: '/src', source: '', from: undefined, readOnly: true, id: '', sharing: 'shared', mode: 0, uid: 0, gid: 0, required: false, size: undefined, env: undefined });
  assert.equal(d('type=bind,target=/src,rw').readOnly, false);
  assert.equal(d('type=bind,target=/src,readwrite=true').readOnly, false);
  assert.deepEqual(parseMount('type=bind,src=x,dst=/y,from=builder,ro=false'), { type: 'bind', source: 'x', target: '/y', from: 'builder', readOnly: false });
  const c = d('type=cache,target=/var/cache/apt,sharing=locked,id=apt,from=base,source=/c,mode=0700,uid=1000,gid=1000');
  assert.deepEqual([c.id, c.sharing, c.mode, c.uid, c.gid, c.readOnly, c.from, c.source], ['apt', 'locked', 0o700, 1000, 1000, false, 'base', '/c']);
  const c2 = d('type=cache,target=/root/.cache,readonly');
  assert.deepEqual([c2.id, c2.sharing, c2.mode, c2.readOnly], ['/root/.cache', 'shared', 0o755, true]);
  const t = d('type=tmpfs,target=/tmp,size=64m');
  assert.deepEqual([t.size, t.readOnly], [64 * 1024 * 1024, false]);
  const s = d('type=secret,id=aws,target=/root/.aws/credentials,required=true,mode=0440,uid=1,gid=2');
  assert.deepEqual([s.id, s.target, s.required, s.mode, s.uid, s.gid, s.readOnly], ['aws', '/root/.aws/credentials', true, 0o440, 1, 2, true]);
  assert.deepEqual([d('type=secret,id=token').target, d('type=secret,id=token').mode], ['/run/secrets/token', 0o400]);
  assert.equal(d('type=secret,target=/run/x/mysecret').id, 'mysecret');
  const env = d('type=secret,id=API_KEY,env=API_KEY');
  assert.deepEqual([env.env, env.target], ['API_KEY', '']);
  const ssh = d('type=ssh');
  assert.deepEqual([ssh.id, ssh.target, ssh.mode, ssh.required], ['default', '/run/buildkit/ssh_agent.0', 0o600, false]);
  assert.equal(d('type=ssh,id=gitlab,required').required, true);
  assert.equal(d('"type=bind","target=/a,b"').target, '/a,b');
  for (const [text, re] of [
    ['type=volume,target=/x', /unsupported mount type "volume"/], ['type=bind', /requires a target/],
    ['type=bind,target=/x,mode=0755', /mode not allowed for "bind"/], ['type=tmpfs,target=/x,uid=1', /uid not allowed/],
    ['type=bind,target=/x,sharing=locked', /invalid cache sharing/], ['type=cache,target=/x,sharing=weird', /unsupported sharing value/],
    ['type=secret,id=a,from=x', /secret mount should not have a from/], ['type=bind,target=/x,required', /unexpected key 'required'/],
    ['type=bind,target=/x,size=1m', /unexpected key 'size'/], ['type=cache,target=/x,mode=999', /invalid value 999 for mode/],
    ['type=cache,target=/x,uid=-1', /invalid value -1 for uid/], ['type=cache,target=/x,foo=bar', /unexpected key 'foo'/],
    ['type=cache,target', /invalid field 'target' must be a key=value pair/], ['type=secret', /requires an id/],
    ['type=tmpfs,target=/x,size=lots', /invalid size/], ['"type=bind', /missing " in quoted-field/],
  ] as const) assert.throws(() => parseMount(text), re, text);
});

test('CMD and ENTRYPOINT: exec and shell form; empty allowed', () => {
  const c = ins('CMD ["sh"]');
  assert.ok(c.kind === 'CMD' && !c.prependShell && c.cmdLine[0] === 'sh');
  const e = ins('ENTRYPOINT exec top -b');
  assert.ok(e.kind === 'ENTRYPOINT' && e.prependShell && e.cmdLine[0] === 'exec top -b');
  fails('CMD --foo=bar x', /unknown flag: foo/);
});

test('LABEL and ENV: pairs; at least one; blank names', () => {
  const l = ins('LABEL multi.label1="value1" multi.label2="value2" other="value3"');
  assert.ok(l.kind === 'LABEL' && l.pairs.length === 3);
  const e = ins('ENV MY_NAME="John Doe"');
  assert.ok(e.kind === 'ENV' && e.pairs[0].key === 'MY_NAME');
  fails('ENV', /ENV requires at least one argument/);
  fails('LABEL', /LABEL requires at least one argument/);
  fails('ENV =x', /ENV names can not be blank/);
});

test('MAINTAINER, USER, WORKDIR, STOPSIGNAL: exactly one argument (the rest of the line)', () => {
  assert.deepEqual((ins('MAINTAINER John Doe <j@example.com>') as { maintainer: string }).maintainer, 'John Doe <j@example.com>');
  assert.deepEqual((ins('USER patrick:staff') as { user: string }).user, 'patrick:staff');
  assert.deepEqual((ins('WORKDIR /path/to/workdir') as { path: string }).path, '/path/to/workdir');
  assert.deepEqual((ins('STOPSIGNAL SIGKILL') as { signal: string }).signal, 'SIGKILL');
  for (const c of ['MAINTAINER', 'USER', 'WORKDIR', 'STOPSIGNAL']) fails(c, new RegExp(`${c} requires exactly one argument`));
});

test('EXPOSE and VOLUME: lists, JSON for VOLUME', () => {
  assert.deepEqual((ins('EXPOSE 80/tcp 80/udp') as { ports: string[] }).ports, ['80/tcp', '80/udp']);
  assert.deepEqual((ins('VOLUME ["/data"]') as { volumes: string[] }).volumes, ['/data']);
  assert.deepEqual((ins('VOLUME /var/log /var/db') as { volumes: string[] }).volumes, ['/var/log', '/var/db']);
  fails('EXPOSE', /EXPOSE requires at least one argument/);
  fails('VOLUME', /VOLUME requires at least one argument/);
  fails('VOLUME [""]', /VOLUME specified can not be an empty string/);
});

test('COPY: sources + dest, heredoc sources, --from --chown --chmod --link --parents --exclude', () => {
  const c = ins('COPY --from=build --chown=55:mygroup --chmod=644 --link --parents --exclude=*.txt --exclude=*.md files* ./x/ /somedir/');
  assert.ok(c.kind === 'COPY');
  assert.deepEqual([c.sources, c.dest, c.from, c.chown, c.chmod, c.link, c.parents, c.exclude], [['files*', './x/'], '/somedir/', 'build', '55:mygroup', '644', true, true, ['*.txt', '*.md']]);
  const j = ins('COPY ["a b", "/dst/"]');
  assert.ok(j.kind === 'COPY' && j.sources[0] === 'a b');
  const h = parseDefinition('FROM a\nCOPY <<EOF1 <<-"EOF2" /dest/\nx $A\nEOF1\n\ty\n\tEOF2\n').stages[0].instructions[0];
  assert.ok(h.kind === 'COPY');
  assert.deepEqual(h.contents, [{ path: 'EOF1', data: 'x $A\n', expand: true }, { path: 'EOF2', data: 'y\n', expand: false }]);
  assert.equal(h.link, false);
  fails('COPY onlyone', /COPY requires at least two arguments, but only one was provided/);
  fails('COPY --checksum=sha256:abc a b', /unknown flag: checksum/);
  fails('COPY --keep-git-dir a b', /unknown flag: keep-git-dir/);
  fails('COPY --link=maybe a b', /expecting boolean value for flag link, not: maybe/);
  fails('COPY --link= a b', /missing a value on flag: link/);
  fails('COPY --from a b', /missing a value on flag: from/);
  fails('COPY --chwon=1 a b', /unknown flag: chwon/);
  assert.throws(() => parseDefinition('FROM a\nCOPY a <<EOF\nx\nEOF\n'), /cannot accept a heredoc as a destination/);
});

test('ADD: --checksum --keep-git-dir --link --chown --chmod --exclude; no --from', () => {
  const a = ins('ADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d --keep-git-dir=true --link --chown=1 --chmod=755 --exclude=x https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /');
  assert.ok(a.kind === 'ADD');
  assert.deepEqual([a.checksum?.slice(0, 10), a.keepGitDir, a.link, a.chown, a.chmod, a.exclude], ['sha256:244', true, true, '1', '755', ['x']]);
  fails('ADD --from=x a b', /unknown flag: from/);
  fails('ADD a', /ADD requires at least two arguments/);
});

test('ARG: names with and without defaults; blank name', () => {
  const a = ins('ARG user1=someuser buildno=1 plain');
  assert.ok(a.kind === 'ARG');
  assert.deepEqual(a.args, [{ key: 'user1', value: 'someuser' }, { key: 'buildno', value: '1' }, { key: 'plain' }]);
  assert.deepEqual((ins('ARG A="x y"') as { args: unknown }).args, [{ key: 'A', value: '"x y"' }]);
  fails('ARG', /ARG requires at least one argument/);
  fails('ARG =x', /ARG names can not be blank/);
});

test('ONBUILD: trigger parsed; ONBUILD/FROM/MAINTAINER refused', () => {
  const o = ins('ONBUILD RUN /usr/local/bin/python-build --dir /app/src');
  assert.ok(o.kind === 'ONBUILD' && o.trigger.kind === 'RUN' && o.expression === 'RUN /usr/local/bin/python-build --dir /app/src');
  fails('ONBUILD ONBUILD RUN x', /Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/);
  fails('ONBUILD FROM x', /FROM isn't allowed as an ONBUILD trigger/);
  fails('ONBUILD MAINTAINER x', /MAINTAINER isn't allowed/);
  fails('ONBUILD', /ONBUILD requires at least one argument/);
  fails('ONBUILD RUNN x', /unknown instruction: RUNN/);
});

test('HEALTHCHECK: CMD (shell and exec), NONE, --interval/--timeout/--start-period/--start-interval/--retries', () => {
  const h = ins('HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1');
  assert.ok(h.kind === 'HEALTHCHECK');
  assert.deepEqual(h.health, { test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'], interval: 300e9, timeout: 3e9, startPeriod: 90e9, startInterval: 500e6, retries: 3 });
  const j = ins('HEALTHCHECK CMD ["curl", "-f"]');
  assert.ok(j.kind === 'HEALTHCHECK' && j.health.test.join(' ') === 'CMD curl -f');
  const n = ins('HEALTHCHECK NONE');
  assert.ok(n.kind === 'HEALTHCHECK' && n.health.test[0] === 'NONE');
  fails('HEALTHCHECK NONE x', /HEALTHCHECK NONE takes no arguments/);
  fails('HEALTHCHECK RUN x', /Unknown type "RUN" in HEALTHCHECK \(try CMD\)/);
  fails('HEALTHCHECK CMD', /Missing command after HEALTHCHECK CMD/);
  fails('HEALTHCHECK --interval=1us CMD x', /Interval "interval" cannot be less than 1ms/);
  fails('HEALTHCHECK --timeout=abc CMD x', /invalid duration "abc"/);
  fails('HEALTHCHECK --retries=-1 CMD x', /--retries cannot be negative \(-1\)/);
  fails('HEALTHCHECK --retries=x CMD x', /invalid syntax/);
  fails('HEALTHCHECK --every=1s CMD x', /unknown flag: every/);
  fails('HEALTHCHECK', /HEALTHCHECK requires at least one argument/);
});

test('Go durations parse and print like time.ParseDuration / Duration.String', () => {
  assert.equal(parseGoDuration('1h2m3.5s'), 3723.5e9);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('1.5µs'), 1500);
  for (const [ns, s] of [[0, '0s'], [3e9, '3s'], [300e9, '5m0s'], [3600e9, '1h0m0s'], [1.5e9, '1.5s'], [500e6, '500ms'], [1500, '1.5µs'], [90061e9, '25h1m1s']] as const) assert.equal(formatGoDuration(ns), s);
  for (const bad of ['', '1', '1x', '.s', '-']) assert.throws(() => parseGoDuration(bad));
});

test('SHELL: JSON form only', () => {
  const s = ins('SHELL ["powershell", "-command"]');
  assert.ok(s.kind === 'SHELL' && s.shell.join(' ') === 'powershell -command');
  fails('SHELL /bin/bash -c', /SHELL requires the arguments to be in JSON form/);
  fails('SHELL []', /SHELL requires at least one argument/);
});

test('unknown instruction: error with a suggestion', () => {
  assert.throws(() => parseDefinition('FROM a\n\n  COPPY a b\n'), (e: unknown) => {
    assert.ok(e instanceof DockerfileError);
    assert.match(e.message, /^Dockerfile:3:3: unknown instruction: COPPY\n {2}3 \| COPPY a b/);
    assert.equal(e.hint, 'did you mean COPY?');
    return true;
  });
  assert.throws(() => parseDefinition('FROM a\nFOO bar\n', 'build/Dockerfile.dev'), /build\/Dockerfile\.dev:2:1: unknown instruction: FOO/);
});

test('flags: must start with --; -- ends flags', () => {
  assert.throws(() => parseDefinition('FROM a\nCOPY --link=true --link a b\n'), /duplicate flag specified: link/);
  const c = parseDefinition('FROM a\nCOPY --link -- --weird b\n').stages[0].instructions[0];
  assert.ok(c.kind === 'COPY' && c.sources[0] === '--weird');
});

// RUN steps inside an ordinary, unprivileged container: the bundled CLI runs in a container that a
// real Docker daemon starts with its defaults (no --privileged, default capabilities and seccomp,
// no user namespaces — GitLab's Docker executor, a Kubernetes pod), picks the ptrace isolation by
// itself, and builds images whose files and configs equal, entry by entry, the same builds made
// with runc on the host. Also: a failing RUN, an interrupted build, and the README's GitLab lines.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildTestImage, dockerMissing, ensurePackages, projectBindsInTmp, projectDir, projectNode, runInContainer, startDocker, stopDocker, type DockerDaemon } from '../harness/docker.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { packAndInstall } from '../harness/npm-package.ts';
import { opensshMissing, sshAddTools } from '../harness/ssh.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { makeContext, run, runMissing } from './helpers.ts';

const cli = join(projectDir, 'dist/cli.js');
const missing = registryMissing() ?? fixturesMissing() ?? runMissing() ?? dockerMissing() ?? ensurePackages(['proot', 'qemu-user-static'])
  ?? (existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)');
const epoch = '1700000000';

const unpackDirs: string[] = [];

/** The rootfs of an OCI archive's image for one platform, unpacked by umoci (not our code). */
async function rootfsOf(archive: string, platform: string): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-tree-'));
  unpackDirs.push(work);
  await run('skopeo', ['copy', '-q', `--override-arch=${platform.split('/')[1]}`, `oci-archive:${archive}`, `oci:${work}/layout:img`]);
  await run('umoci', ['unpack', '--image', `${work}/layout:img`, `${work}/bundle`]);
  return `${work}/bundle/rootfs`;
}

/** Every entry of a rootfs: path, type, mode, owner, size, link target, then each file's sha256. */
async function treeOf(archive: string, platform: string): Promise<string[]> {
  const root = await rootfsOf(archive, platform);
  const { stdout } = await run('sh', ['-c', `cd ${root} && find . -printf '%p %y %m %U:%G %s %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 -r sha256sum`], { maxBuffer: 64 << 20 });
  return stdout.trim().split('\n');
}

/** The image configs of an OCI archive, by platform (SOURCE_DATE_EPOCH pins their times). */
async function configsOf(archive: string): Promise<Record<string, unknown>> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-cfg-'));
  try {
    await run('tar', ['-xf', archive, '-C', work]);
    const blob = (d: string) => JSON.parse(readFileSync(join(work, 'blobs', ...d.split(':')), 'utf8'));
    const top = blob(JSON.parse(readFileSync(join(work, 'index.json'), 'utf8')).manifests[0].digest);
    const manifests = top.manifests ? top.manifests.map((m: { digest: string }) => blob(m.digest)) : [top];
    return Object.fromEntries(manifests.map((m: { config: { digest: string } }) => {
      const c = blob(m.config.digest);
      return [`${c.os}/${c.architecture}`, c];
    }));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The digest of what an OCI archive's index.json points at (the image or the index). */
function topDigest(archive: string): string {
  const r = spawnSync('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' });
  return JSON.parse(r.stdout).manifests[0].digest;
}

describe('RUN without privileges, inside a default Docker container', { skip: missing, timeout: 900_000 }, () => {
  let reg: TestRegistry;
  let docker: DockerDaemon;
  let image: string;
  let busybox: string;
  const dirs: string[] = [];
  const tempDir = () => { const d = mkdtempSync(join(tmpdir(), 'slipway-unpriv-')); chmodSync(d, 0o755); dirs.push(d); return d; };

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
    docker = await startDocker();
    image = buildTestImage(docker);
  });
  after(async () => {
    await stopDocker();
    await reg?.stop();
    for (const d of [...dirs, ...unpackDirs]) rmSync(d, { recursive: true, force: true });
  });

  /** Runs `sh -c script` in the default container with the context at /ctx and /out writable. */
  const inContainer = (script: string, ctx: string, out: string, env: Record<string, string> = {}) => runInContainer(docker, ['/bin/sh', '-c', script], {
    image, network: 'host', binds: [`${ctx}:/ctx`, `${out}:/out`, `${projectNode}:/usr/local/bin/node:ro`],
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/root', SOURCE_DATE_EPOCH: epoch, ...env }, workdir: '/ctx', timeoutMs: 600_000,
  });
  const slipway = `node ${cli} build --progress plain --insecure-registry ${'127.0.0.1'} --cache-dir /root/cache`;
  const onHost = (ctx: string, args: string[]) => spawnSync(projectNode, [cli, 'build', '--progress', 'plain', '--isolation', 'runc', '--cache-dir', join(tempDir(), 'cache'), ...args, ctx], {
    encoding: 'utf8', env: { PATH: process.env.PATH, HOME: process.env.HOME, SOURCE_DATE_EPOCH: epoch }, timeout: 600_000,
  });

  const dockerfile = (base: string) => [
    `FROM ${base}`,
    "RUN mkdir -p /etc /home/app /data/sub && printf 'root:x:0:0::/root:/bin/sh\\napp:x:1234:1234::/home/app:/bin/sh\\n' > /etc/passwd && printf 'root:x:0:\\napp:x:1234:\\nextra:x:777:app\\n' > /etc/group && chown 1234:1234 /home/app",
    'RUN echo one > /data/a && echo two > /data/b && echo three > /data/c && ln -s a /data/link && ln /data/a /data/hard',
    'RUN echo changed >> /data/a && rm /data/b && chown 1234:777 /data/c && chmod 0750 /data/sub && ln -sf c /data/link',
    'RUN --mount=type=cache,target=/var/cache/app echo cached >> /var/cache/app/log && cp /var/cache/app/log /data/from-cache',
    'RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /data/secret-length && test ! -e /data/token',
    'USER app',
    'WORKDIR /home/app',
    'RUN id > /home/app/id && touch mine && mkdir own',
    'CMD ["/bin/sh"]', '',
  ].join('\n');

  test('several RUN steps, cache and secret mounts, USER: the same files and config as runc on the host', async () => {
    const ctx = makeContext({ Dockerfile: dockerfile(busybox), token: 's3cr3t-value\n' });
    chmodSync(ctx, 0o755);
    const out = tempDir();
    const r = inContainer(`${slipway} --secret id=token,src=/ctx/token -o type=oci,dest=/out/img.tar . && ls -A /root/cache/tmp`, ctx, out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /RUN isolation: ptrace \(/);
    assert.equal(r.stdout.trim(), '', 'nothing is left in the cache dir\'s tmp/ after the build');
    const host = onHost(ctx, ['--secret', `id=token,src=${join(ctx, 'token')}`, '-o', `type=oci,dest=${join(out, 'host.tar')}`]);
    assert.equal(host.status, 0, host.stderr);
    assert.match(host.stderr, /RUN isolation: runc/);
    const [inside, outside] = [await treeOf(join(out, 'img.tar'), 'linux/amd64'), await treeOf(join(out, 'host.tar'), 'linux/amd64')];
    assert.deepEqual(inside, outside);
    assert.ok(inside.includes('./data/c f 644 1234:777 6 '), inside.join('\n'));
    assert.ok(inside.includes('./data/link l 777 0:0 1 c'));
    assert.ok(inside.includes('./home/app/mine f 644 1234:1234 0 '));
    assert.ok(!inside.some((l) => l.startsWith('./data/b ')));
    assert.deepEqual(await configsOf(join(out, 'img.tar')), await configsOf(join(out, 'host.tar')));
    assert.equal(topDigest(join(out, 'img.tar')), topDigest(join(out, 'host.tar')), 'byte-identical images');
    const root = await rootfsOf(join(out, 'img.tar'), 'linux/amd64');
    assert.match(readFileSync(join(root, 'home/app/id'), 'utf8'), /^uid=1234\(app\) gid=1234\(app\) groups=777\(extra\)$/m);
    assert.equal(readFileSync(join(root, 'data/secret-length'), 'utf8').trim(), '13');
    assert.equal(readFileSync(join(out, 'img.tar')).includes(Buffer.from('s3cr3t-value')), false, 'the secret is in no layer');
  });

  test('a failing RUN: its exit code and the tail of its output, and nothing left behind', () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo first line && echo about to fail >&2 && exit 3\n` });
    chmodSync(ctx, 0o755);
    const out = tempDir();
    const r = inContainer(`${slipway} -o type=oci,dest=/out/img.tar .; echo "rc=$?"; ls -A /root/cache/tmp; ps -o comm | grep -c -e proot -e sleep`, ctx, out);
    assert.match(r.stdout, /^rc=1$/m);
    assert.match(r.stderr, /Dockerfile:2: RUN failed: process "\/bin\/sh -c echo first line && echo about to fail >&2 && exit 3" did not complete successfully: exit code: 3/);
    assert.match(r.stderr, /--- last output ---\n(.*\n)*.*about to fail/);
    assert.match(r.stdout, /^0$/m, 'no proot process is left');
    assert.equal(existsSync(join(out, 'img.tar')), false);
  });

  test('an interrupted build (SIGINT, SIGTERM) stops the step and leaves no process and no temp dir', () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo started && sleep 60\n` });
    chmodSync(ctx, 0o755);
    for (const signal of ['INT', 'TERM']) {
      const script = `${slipway} -o type=oci,dest=/out/img.tar . 2>/out/log & pid=$!; ` +
        'for i in $(seq 100); do grep -q "^#[0-9]* started" /out/log 2>/dev/null && break; sleep 0.1; done; ' +
        `kill -${signal} $pid; wait $pid; echo "rc=$?"; sleep 0.5; ps -o comm | grep -c -e proot -e sleep; ls -A /root/cache/tmp; ls -A /tmp`;
      const started = Date.now();
      const r = inContainer(script, ctx, tempDir());
      assert.ok(Date.now() - started < 30_000, `${signal}: the build stopped well before the 60 s step would have`);
      assert.match(r.stdout, new RegExp(`^rc=${signal === 'INT' ? 130 : 143}$`, 'm'), r.stdout);
      const lines = r.stdout.trim().split('\n');
      assert.deepEqual(lines.slice(1).filter((l) => !projectBindsInTmp.includes(l)), ['0'], `${signal}: no process, no build dir in the cache, nothing in /tmp: ${r.stdout}`);
    }
  });

  test('where no isolation works (no mount, no user namespaces, no proot) one error names what is missing and the three ways out', () => {
    const bare = buildTestImage(docker, { proot: false });
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN true\n` });
    chmodSync(ctx, 0o755);
    const r = runInContainer(docker, ['/bin/sh', '-c', `${slipway} .`], {
      image: bare, network: 'host', binds: [`${ctx}:/ctx`, `${projectNode}:/usr/local/bin/node:ro`], env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/root' }, workdir: '/ctx',
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Dockerfile:2: cannot run RUN steps here: runtime as root: root cannot mount here.*; rootless runtime: .*; ptrace: proot is not installed/);
    assert.match(r.stderr, /--isolation runc/);
    assert.match(r.stderr, /sysctl -w kernel.unprivileged_userns_clone=1/);
    assert.match(r.stderr, /apt-get install proot/);
  });

  test('two platforms with a RUN in each, QEMU called directly (no binfmt in the container): equal to runc + binfmt on the host', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN uname -m > /arch && echo built > /stamp\n` });
    chmodSync(ctx, 0o755);
    const out = tempDir();
    const r = inContainer(`${slipway} --platform linux/amd64,linux/arm64 -o type=oci,dest=/out/img.tar .`, ctx, out);
    assert.equal(r.status, 0, r.stderr);
    const host = onHost(ctx, ['--platform', 'linux/amd64,linux/arm64', '-o', `type=oci,dest=${join(out, 'host.tar')}`]);
    assert.equal(host.status, 0, host.stderr);
    for (const platform of ['linux/amd64', 'linux/arm64']) {
      const inside = await treeOf(join(out, 'img.tar'), platform);
      assert.deepEqual(inside, await treeOf(join(out, 'host.tar'), platform));
    }
    const arches = (await run('sh', ['-c', `mkdir ${out}/x && tar -xf ${out}/img.tar -C ${out}/x && for l in ${out}/x/blobs/sha256/*; do tar -xzOf "$l" arch 2>/dev/null; done | sort`])).stdout;
    assert.deepEqual(arches.trim().split('\n'), ['aarch64', 'x86_64']);
    assert.deepEqual(await configsOf(join(out, 'img.tar')), await configsOf(join(out, 'host.tar')));
    assert.equal(topDigest(join(out, 'img.tar')), topDigest(join(out, 'host.tar')), 'byte-identical index');
  });

  test('RUN --mount=type=ssh with a key file: ssh-add -l in the step lists it under ptrace, and the layer holds no socket', { skip: opensshMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --mount=type=ssh --mount=type=bind,source=tools,target=/t /t/ld.so --library-path /t /t/ssh-add -l > /keys\n` });
    sshAddTools(join(ctx, 'tools'));
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'in-container', '-f', join(ctx, 'key')]);
    const fingerprint = (await run('ssh-keygen', ['-lf', join(ctx, 'key.pub')])).stdout.split(' ')[1];
    await run('chmod', ['-R', 'a+rX', ctx]);
    const out = tempDir();
    const r = inContainer(`${slipway} --ssh default=/ctx/key -o type=oci,dest=/out/img.tar .`, ctx, out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /RUN isolation: ptrace \(/);
    const root = await rootfsOf(join(out, 'img.tar'), 'linux/amd64');
    const keys = readFileSync(join(root, 'keys'), 'utf8');
    assert.ok(keys.includes(fingerprint) && keys.includes('in-container'), keys);
    assert.equal(existsSync(join(root, 'run', 'buildkit')), false, 'no socket or mountpoint in the image');
  });

  test('the README\'s GitLab CI script lines, unchanged, build and push from a default container', async () => {
    const readme = readFileSync(join(projectDir, 'README.md'), 'utf8');
    const yaml = /### GitLab CI[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1];
    const lines = scriptLines(yaml, 'script');
    assert.ok(lines.some((l) => l.startsWith('slipway build')), lines.join('\n'));
    const install = scriptLines(yaml, 'before_script');
    assert.ok(install.some((l) => l.startsWith('npm install -g ')), install.join('\n'));
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo from-gitlab > /built\nCOPY . /src/\n`, 'app.txt': 'app\n' });
    chmodSync(ctx, 0o755);
    const out = tempDir();
    // What before_script installs is in the test image (proot) and binds: the slipway command, as
    // `npm install -g` of the packed project puts it in a prefix (no registry here, so the tarball).
    const pkg = await packAndInstall();
    dirs.push(dirname(pkg.tarball));
    chmodSync(dirname(pkg.tarball), 0o755);
    const env = {
      CI_REGISTRY: reg.host, CI_REGISTRY_USER: 'gitlab-ci-token', CI_REGISTRY_PASSWORD: 'unused-by-an-open-registry',
      CI_REGISTRY_IMAGE: `${reg.host}/group/project`, CI_COMMIT_SHORT_SHA: 'abc1234', CI_COMMIT_REF_SLUG: 'main',
    };
    const script = ['set -e', ...lines].join('\n');
    writeFileSync(join(out, 'job.sh'), script + '\n');
    const r = runInContainer(docker, ['/bin/sh', '/out/job.sh'], {
      image, network: 'host', binds: [`${ctx}:/ctx`, `${out}:/out`, `${pkg.prefix}:/opt/npm-global:ro`, `${projectNode}:/usr/local/bin/node:ro`,
        '/bin/busybox:/usr/bin/env:ro'], // the command's `#!/usr/bin/env node`, as node:24-bookworm has it
      env: { PATH: '/opt/npm-global/bin:/usr/local/bin:/usr/bin:/bin', HOME: '/root', ...env }, workdir: '/ctx', timeoutMs: 600_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/group/project:abc1234`]);
    assert.equal(JSON.parse(stdout).Architecture, 'amd64');
    assert.ok(existsSync(join(ctx, 'build.json')), 'the metadata file the job keeps as an artifact');
    assert.ok(existsSync(join(ctx, '.slipway-cache', 'keys')), 'the cache dir GitLab keeps');
    // The cache dir sits inside the context but never went into the image.
    const tree = await run('sh', ['-c', `skopeo copy -q --src-tls-verify=false docker://${reg.host}/group/project:abc1234 oci-archive:${out}/pushed.tar`]);
    assert.equal(tree.stdout, '');
    const files = await treeOf(join(out, 'pushed.tar'), 'linux/amd64');
    assert.ok(files.some((l) => l.startsWith('./src/app.txt ')));
    assert.ok(!files.some((l) => l.startsWith('./src/.slipway-cache')), 'the cache is not in the image');
  });
});

/** The entries of `key:` (a list of shell lines, `- >` folded ones joined) of the first job in `yaml`. */
function scriptLines(yaml: string, key: string): string[] {
  const lines = yaml.split('\n');
  const start = lines.findIndex((l) => l.trim() === `${key}:`);
  const indent = lines[start].search(/\S/);
  const out: string[] = [];
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i];
    if (l.trim() === '') continue;
    if (l.search(/\S/) <= indent) break;
    const item = /^\s*- (.*)$/.exec(l);
    if (!item) continue;
    if (item[1].trim() === '>') {
      const folded: string[] = [];
      const itemIndent = l.search(/\S/);
      while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].search(/\S/) > itemIndent)) folded.push(lines[++i].trim());
      out.push(folded.filter(Boolean).join(' '));
    } else out.push(item[1]);
  }
  return out;
}

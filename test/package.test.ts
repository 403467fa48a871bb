// slipway as an npm package: `npm pack` holds the runtime files only (dist/cli.js and the bundle it loads),
// `npm install -g --offline` of it into an empty prefix needs no registry, and the installed
// command builds examples/hello from a directory with no src/ and no node_modules in reach; umoci
// unpacks the result. npx of the tarball runs the same command.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { npmEnv, packAndInstall, type InstalledPackage } from './harness/npm-package.ts';

const run = promisify(execFile);
const projectDir = realpathSync(new URL('..', import.meta.url).pathname);
const missing = ['npm', 'skopeo', 'umoci'].find((t) => !existsSync(`/usr/bin/${t}`)) ? 'npm, skopeo or umoci is not installed' : undefined;

let pkg: InstalledPackage;
before(async () => { if (!missing) pkg = await packAndInstall(); });
after(() => { if (pkg) rmSync(dirname(pkg.tarball), { recursive: true, force: true }); });

test('npm pack holds package.json, the README and dist/cli.js only; the install has no dependencies', { skip: missing }, () => {
  assert.deepEqual(pkg.packed, ['README.md', 'dist/cli-main.cjs', 'dist/cli.js', 'dist/package.json', 'package.json']);
  const installed = join(pkg.prefix, 'lib', 'node_modules', 'slipway');
  assert.deepEqual(readdirSync(installed).sort(), ['README.md', 'dist', 'package.json'], 'no node_modules: the bundle needs none');
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  assert.equal(manifest.dependencies, undefined, 'everything the CLI needs is bundled into dist/cli.js');
  assert.equal(manifest.bin.slipway, 'dist/cli.js');
});

test('the installed slipway command builds examples/hello with no src/ in reach; umoci unpacks the image', { skip: missing }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'slipway-npm-build-'));
  try {
    cpSync(join(projectDir, 'examples', 'hello'), join(work, 'examples', 'hello'), { recursive: true });
    const env = { ...npmEnv(), HOME: work, XDG_CACHE_HOME: join(work, 'cache'), SOURCE_DATE_EPOCH: '0' };
    const { stdout: version } = await run(pkg.bin, ['--version'], { cwd: work, env });
    assert.match(version, new RegExp(JSON.parse(readFileSync(join(projectDir, 'package.json'), 'utf8')).version.replace(/\./g, '\\.')));
    const { stdout: viaNpx } = await run('npx', ['--offline', '--yes', '--package', pkg.tarball, 'slipway', '--version'], { cwd: work, env });
    assert.equal(viaNpx, version, 'npx of the tarball runs the same command');
    const out = join(work, 'hello.tar');
    await run(pkg.bin, ['build', 'examples/hello', '--output', `type=oci,dest=${out}`], { cwd: work, env });
    await run('skopeo', ['copy', '-q', `oci-archive:${out}`, `oci:${work}/layout:hello`]);
    await run('umoci', ['unpack', '--image', `${work}/layout:hello`, `${work}/bundle`]);
    assert.equal(readFileSync(join(work, 'bundle', 'rootfs', 'srv', 'greeting.txt'), 'utf8'), readFileSync(join(projectDir, 'examples', 'hello', 'greeting.txt'), 'utf8'));
    assert.equal(readFileSync(join(work, 'bundle', 'rootfs', 'srv', 'built-with.txt'), 'utf8'), 'hello from slipway\n');
    const config = JSON.parse(readFileSync(join(work, 'bundle', 'config.json'), 'utf8'));
    assert.deepEqual(config.process.args, ['/srv/greeting.txt']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('npm install -g of the tarball\'s URL (as the README\'s GitLab job does) installs the same command', { skip: missing }, async (t) => {
  const server = createServer((req, res) => {
    if (req.url !== '/slipway.tgz') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(readFileSync(pkg.tarball));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const prefix = join(dirname(pkg.tarball), 'from-url');
  mkdirSync(prefix);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slipway.tgz`;
  await run('npm', ['install', '-g', '--no-audit', '--no-fund', '--prefix', prefix, url], { cwd: prefix, env: npmEnv() });
  const { stdout } = await run(join(prefix, 'bin', 'slipway'), ['--version'], { env: npmEnv() });
  assert.match(stdout, /^slipway \d+\.\d+\.\d+/);
  assert.deepEqual(readdirSync(join(prefix, 'lib', 'node_modules', 'slipway')).sort(), ['README.md', 'dist', 'package.json']);
});

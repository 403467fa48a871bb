// What a RUN needs is made ready before it. At a cache miss with a RUN after it in its stage, the
// isolation's probes start beside the step's own work: here the step (a WORKDIR, which needs the
// base's layer) waits two seconds for that layer, and the isolation is chosen and said within them,
// not after the RUN starts. A COPY right before a RUN makes its files in a lower dir of their own,
// and the RUN sees them exactly as it sees them extracted from the COPY's layer.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesMissing } from '../harness/fixtures.ts';
import { busyboxBehindProxy } from '../harness/proxy.ts';
import { registryMissing } from '../harness/registry.ts';
import { buildContext, makeContext, run, runMissing } from './helpers.ts';

describe('what a RUN needs is ready before it', { skip: registryMissing() ?? fixturesMissing() ?? runMissing() }, () => {
  const fixture = busyboxBehindProxy();

  test('the isolation is said while the WORKDIR before the RUN still waits for the base layer', async () => {
    // The base's layer is answered 503 + Retry-After: 2 once: it comes two seconds late.
    fixture.proxy.addFault({ method: 'GET', path: /\/library\/busybox\/blobs\/sha256:/, times: 1, fault: { status: 503, retryAfter: '2' } });
    const { result, log } = await buildContext(makeContext({ Dockerfile: `FROM ${fixture.proxy.host}/library/busybox:1\nWORKDIR /w\nRUN echo ok > ok\n` }));
    assert.equal(result.steps.run, 1);
    assert.ok(fixture.proxy.requests.some((r) => r.fault !== undefined), 'the fault was hit');
    // WORKDIR has no progress line of its own: the RUN's line comes once it is done.
    const said = log.findIndex((l) => /^RUN isolation: /.test(l));
    const runStarts = log.findIndex((l) => /^STEP .*RUN echo ok/.test(l));
    assert.ok(said !== -1 && runStarts !== -1, log.join('\n'));
    assert.ok(said < runStarts, log.join('\n'));
  });

  test('a COPY right before a RUN: the RUN sees its files as it sees them after another step, and the store keeps the COPY\'s dir as its layer', async () => {
    const files = { 'app/run.sh': '#!/bin/sh\necho hi\n', 'app/conf/a.conf': 'a=1\n', 'app/conf/b.conf': 'b=2\n', 'marker': 'm' };
    const show = 'RUN cd /srv/app && find . -mindepth 1 | sort | while read p; do stat -c "%n %A %u:%g %s %Y" "$p"; done > /seen && cat /seen';
    // The RUN's output, one `cat` of a small file: one chunk of the log.
    const at = (log: string[]) => log.find((chunk) => chunk.startsWith('./conf '))?.trim();
    /** A context whose files and dirs all have one mtime (two contexts made a second apart would differ). */
    const context = (dockerfile: string): string => {
      const dir = makeContext({ ...files, Dockerfile: dockerfile });
      for (const p of ['app/run.sh', 'app/conf/a.conf', 'app/conf/b.conf', 'app/conf', 'app']) utimesSync(join(dir, p), 1_600_000_000, 1_600_000_000);
      return dir;
    };
    const direct = context(`FROM ${fixture.proxy.host}/library/busybox:1\nCOPY --chown=7:8 --chmod=750 app/ /srv/app/\n${show}\n`);
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
    const out = join(direct, 'out.tar');
    const a = await buildContext(direct, { cacheDir, outputs: [`type=oci,dest=${out}`] });
    // The same COPY with another COPY between it and the RUN: its layer is written, then extracted for the RUN.
    const extracted = context(`FROM ${fixture.proxy.host}/library/busybox:1\nCOPY --chown=7:8 --chmod=750 app/ /srv/app/\nCOPY marker /marker\n${show}\n`);
    const b = await buildContext(extracted);
    assert.equal(a.result.steps.run, 2);
    const seen = at(a.log);
    assert.match(seen ?? '', /^\.\/run\.sh -rwxr-x--- 7:8 18 1600000000$/m, seen);
    assert.equal(seen, at(b.log));
    const config = JSON.parse((await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`])).stdout) as { rootfs: { diff_ids: string[] } };
    const copyLayer = join(cacheDir, 'snapshots', config.rootfs.diff_ids[1].slice('sha256:'.length));
    assert.ok(existsSync(`${copyLayer}.done`), 'the COPY\'s layer is in the extracted-layer store');
    assert.deepEqual(readdirSync(join(copyLayer, 'srv/app/conf')), ['a.conf', 'b.conf']);
  });
});

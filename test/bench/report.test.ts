// The benchmark's own measuring parts: met/MISSED verdicts and the peak-RSS sampler, against a real
// child process that holds a known amount of memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWithPeakRss, verdict, ratio, type Target } from '../../bench/report.ts';

const row = (value: number | undefined, kind: Target['kind'], limit: number): Target => ({ name: 'r', figures: '', value, limit, kind, unit: '×' });

test('bench targets: at most / at least verdicts, and no verdict without a value', () => {
  assert.equal(verdict(row(0.5, 'at most', 0.5)), 'met');
  assert.equal(verdict(row(0.51, 'at most', 0.5)), 'MISSED');
  assert.equal(verdict(row(1.2, 'at least', 1)), 'met');
  assert.equal(verdict(row(0.83, 'at least', 1)), 'MISSED');
  assert.match(verdict({ ...row(undefined, 'at most', 1), why: 'docker BuildKit missing or failed' }), /^— .*docker BuildKit missing/);
  assert.equal(ratio(1, undefined), undefined);
  assert.equal(ratio(1, 4), 0.25);
});

test('bench peak RSS: a child that touches 200 MB is seen above 200 MB, a small one well below', async () => {
  const hold = (mb: number) => [process.execPath, '-e', `const b = Buffer.alloc(${mb} * 1e6, 1); setTimeout(() => console.log(b[5]), 300);`];
  const big = await runWithPeakRss(hold(200));
  const small = await runWithPeakRss(hold(1));
  assert.ok(big.peakRss > 200e6, `peak ${big.peakRss}`);
  assert.ok(small.peakRss < 150e6 && small.peakRss > 10e6, `peak ${small.peakRss}`);
  assert.equal(big.output.trim(), '1');
  await assert.rejects(runWithPeakRss([process.execPath, '-e', 'process.exit(3)']), /failed \(3\)/);
});

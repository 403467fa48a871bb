// `--from=NAME` that is no stage: the error says so first, with the stages there are — at once when
// NAME cannot be an image reference, and together with the image lookup's failure when it can.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UserError } from '../../src/errors.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { buildContext, makeContext } from './helpers.ts';

describe('COPY --from a name that is no stage', { skip: registryMissing() }, () => {
  let reg: TestRegistry;
  before(async () => { reg = await startRegistry(); });
  after(async () => reg?.stop());

  const failsWith = async (from: string, pattern: RegExp) => {
    const ctx = makeContext({ Dockerfile: `FROM scratch AS builder\nCOPY a /a\nFROM scratch AS app\nCOPY --from=${from} /a /b\n`, a: 'a' });
    const started = Date.now();
    await assert.rejects(buildContext(ctx), (e: unknown) => {
      assert.ok(e instanceof UserError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
    return Date.now() - started;
  };

  test('not an image reference either: "no stage named" at once, listing the stages, at the Dockerfile line', async () => {
    const ms = await failsWith('Builder_2!', /Dockerfile:4: no stage named "Builder_2!" \(stages: builder, app\), and "Builder_2!" is not an image reference/);
    assert.ok(ms < 2000, `no network round trip (${ms} ms)`);
  });

  test('a name that can be an image the registry lacks: the error names the stages and the image looked for', async () => {
    await failsWith(`${reg.host}/buidler:1`, new RegExp(`Dockerfile:4: no stage named "${reg.host}/buidler:1" \\(stages: builder, app\\), and the image ${reg.host}/buidler:1 could not be pulled: image not found`));
  });
});

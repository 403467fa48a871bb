// What the image commands share: a source and a sink from the names on the command line (any
// transport), both closed whatever happens.
import { UserError } from '../errors.ts';
import { RegistryClient } from '../registry/index.ts';
import { openSink, openSource, parseImageName, type ImageSink, type ImageSource } from '../transport/index.ts';
import { registryClientOptions } from './copy.ts';

export async function withSourceAndSink<T>(command: string, source: string, targets: string[], insecure: string[] | undefined, fn: (src: ImageSource, sink: ImageSink) => Promise<T>): Promise<T> {
  if (targets.length === 0) throw new UserError(`slipway ${command} needs -t NEW: the base is never changed in place`, { hint: `see 'slipway ${command} --help'` });
  const srcName = parseImageName(source);
  const dstNames = targets.map((t) => parseImageName(t, { defaultTag: false }));
  const client = new RegistryClient(registryClientOptions(insecure));
  try {
    const src = await openSource(srcName, client);
    try {
      const sink = await openSink(dstNames, client);
      try {
        return await fn(src, sink);
      } finally {
        await sink.close();
      }
    } finally {
      await src.close();
    }
  } finally {
    await client.close();
  }
}

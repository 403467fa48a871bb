// Base images resolved through the cache: the resolution of each `FROM` (or `--from=image`) and
// its manifest and config bytes are kept in the cache dir (so in the Actions cache too), so a
// runner with a restored cache asks the registry one HEAD per tag (none for a digest) and reads
// the rest locally, digest-verified. `--pull` resolves afresh. When the registry cannot answer
// (down, rate-limited), a cached resolution is used with one warning (stale-if-error).
import type { CacheRecord, LocalCache } from '../cache/index.ts';
import { UserError } from '../errors.ts';
import { formatPlatform, type Platform } from '../oci/index.ts';
import { baseImageKey } from './keys.ts';
import type { BaseImage, RegistryPort } from './ports.ts';
import type { RemoteRecords } from './registry-cache.ts';

export interface BaseImagesOptions {
  /** Re-resolve every reference (`--pull`), even when the cache knows it. */
  pull: boolean;
  warn: (message: string) => void;
  /** Records from `--cache-from` registries, and where their blobs are. */
  remote: () => RemoteRecords;
  /** Called with every base record this build used or made (for `--cache-to`). */
  used: (key: string, record: CacheRecord) => void;
}

const message = (e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e));

export class BaseImages {
  private readonly cache: LocalCache;
  private readonly registry: RegistryPort;
  private readonly options: BaseImagesOptions;
  /** One HEAD per tag and build: the platforms of one build see the same index. */
  private readonly heads = new Map<string, Promise<string | undefined>>();

  constructor(cache: LocalCache, registry: RegistryPort, options: BaseImagesOptions) {
    this.cache = cache;
    this.registry = registry;
    this.options = options;
  }

  async resolve(ref: string, platform: Platform): Promise<BaseImage> {
    const key = baseImageKey(ref, platform);
    const cached = this.options.pull ? undefined : await this.load(key);
    if (cached && ref.includes('@')) return cached; // a digest names the same content forever
    if (cached) {
      let now: string | undefined;
      try {
        now = await this.headOnce(ref);
      } catch (e) {
        this.options.warn(`${ref}: the registry did not answer (${message(e)}); using the cached ${formatPlatform(platform)} image ${cached.manifestDigest}`);
        return cached;
      }
      if (now === cached.topDigest) return cached;
    }
    let image: BaseImage;
    try {
      image = await this.registry.resolve(ref, platform);
    } catch (e) {
      if (!cached || !(e instanceof UserError) || /not found|no image for platform/.test(e.message)) throw e;
      this.options.warn(`${ref}: ${message(e)}; using the cached ${formatPlatform(platform)} image ${cached.manifestDigest}`);
      return cached;
    }
    await this.save(key, image).catch((e: unknown) => this.options.warn(`${ref}: could not keep its resolution in the cache (${message(e)})`));
    return image;
  }

  private headOnce(ref: string): Promise<string | undefined> {
    let p = this.heads.get(ref);
    if (!p) this.heads.set(ref, (p = this.registry.head(ref)));
    return p;
  }

  /**
   * The cached resolution, when its record and both blobs are there and intact: in the cache dir,
   * else in a `--cache-from` registry (its two small blobs are fetched into the cache dir).
   */
  private async load(key: string): Promise<BaseImage | undefined> {
    let record = await this.cache.index.get(key);
    if (!record?.base) {
      const remote = this.options.remote().get(key);
      if (!remote?.record.base) return undefined;
      try {
        for (const d of [remote.record.base.manifest, remote.record.base.config]) await this.cache.store.put(await this.registry.fetchBlob(remote.repository, d), d.digest);
      } catch (e) {
        this.options.warn(`cache-from: a base image resolution could not be read (${message(e)}); resolving it afresh`);
        return undefined;
      }
      await this.cache.index.set(key, remote.record);
      record = remote.record;
    }
    const rec = record.base!;
    this.options.used(key, record);
    const [manifestBytes, configBytes] = [await this.cache.store.read(rec.manifest.digest), await this.cache.store.read(rec.config.digest)];
    if (!manifestBytes || !configBytes) return undefined;
    return {
      repository: rec.repository, topDigest: rec.top, manifestDigest: rec.manifest.digest, manifestMediaType: rec.manifest.mediaType,
      manifest: JSON.parse(Buffer.from(manifestBytes).toString('utf8')), manifestBytes, config: JSON.parse(Buffer.from(configBytes).toString('utf8')), configBytes,
    };
  }

  private async save(key: string, image: BaseImage): Promise<void> {
    await this.cache.store.put(image.manifestBytes, image.manifestDigest);
    await this.cache.store.put(image.configBytes, image.manifest.config.digest);
    const manifest = { mediaType: image.manifestMediaType, digest: image.manifestDigest, size: image.manifestBytes.length };
    const record: CacheRecord = { base: { top: image.topDigest, manifest, config: image.manifest.config, repository: image.repository }, created: new Date().toISOString() };
    await this.cache.index.set(key, record);
    this.options.used(key, record);
  }
}

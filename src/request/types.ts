// The one typed build request. `cli/` and `action/` produce it (through makeBuildRequest); the engine
// reads nothing else (no process.env, no action inputs).
import type { Platform } from '../oci/index.ts';
import type { MirrorRule } from '../registry/index.ts';
import type { SshSpec } from './ssh.ts';

export const layerCompressions = ['gzip', 'zstd', 'uncompressed'] as const;
export type LayerCompressionType = (typeof layerCompressions)[number];

/**
 * The buildx exporter keys of one output beyond its type and destination, each present only when
 * the output gives it: the layer keys (merged into the build's one `compression` by make.ts), image
 * names (added to the tags), `registry.insecure`, and `annotation*` keys in --annotation's syntax.
 */
export interface OutputKeys {
  compression?: LayerCompressionType;
  compressionLevel?: number;
  forceCompression?: boolean;
  /** `oci-mediatypes=false`: Docker media types (as --docker-media-types). */
  ociMediaTypes?: boolean;
  names?: string[];
  insecure?: boolean;
  /** `annotation.KEY=V`, `annotation-LEVEL[PLATFORM].KEY=V` as `LEVEL[PLATFORM]:KEY=V`. */
  annotations?: string[];
}

export type OutputSpec = (
  | { type: 'registry' } // push every tag (same as --push)
  | { type: 'oci'; dest: string; tar: boolean } // OCI image layout, as a directory or a tar file
  | { type: 'docker'; dest: string } // `docker load` tarball
  | { type: 'none' } // build only (the cache is still written)
) & OutputKeys;

/** How the build's layers are compressed: one choice for every output (BuildKit's compression.Config). */
export interface LayerCompression {
  type: LayerCompressionType;
  /** gzip 0-9, zstd 1-22; absent: the compressor's default (gzip 6, zstd 3). */
  level?: number;
  /** Convert layers that already exist in another compression (base image layers) too. */
  force: boolean;
}

export const annotationLevels = ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'] as const;
export type AnnotationLevel = (typeof annotationLevels)[number];

export interface Annotation {
  level: AnnotationLevel;
  /** Only the manifests of this platform (`manifest[linux/amd64]:…`); undefined: every one. */
  platform?: Platform;
  key: string;
  value: string;
}

export interface AttestRequest {
  /** SLSA provenance v1; undefined: none. */
  provenance?: { mode: 'min' | 'max' };
  /** An SPDX 2.3 SBOM of each platform image. */
  sbom: boolean;
  /** The provenance's runDetails.builder.id (the action sets the workflow run's URL). */
  builderId?: string;
}

export const isolationModes = ['auto', 'runc', 'crun', 'rootless', 'ptrace'] as const;
export type Isolation = (typeof isolationModes)[number];

export interface SecretSpec {
  id: string;
  /** Exactly one of: a file to read, or an environment variable's value (read by cli/ or action/). */
  value: Buffer;
}

/** Where a named context's files come from (`--build-context NAME=VALUE`). */
export type NamedContextSource =
  | { kind: 'local'; dir: string } // a directory; its own .dockerignore applies, as in BuildKit
  | { kind: 'image'; ref: string } // docker-image://REF
  | { kind: 'oci-layout'; dir: string; digest: string; tag?: string } // oci-layout://DIR[:TAG|@DIGEST], tag resolved
  | { kind: 'git'; url: string } // a git URL, fetched when a step first needs it
  | { kind: 'http'; url: string }; // an http(s) URL: one file named `context`, as BuildKit's http context

export interface NamedContext {
  /** The name as BuildKit matches it (familiar form, no `:latest`): `FROM name`, `--from=name`. */
  name: string;
  /** The value as given, for messages. */
  value: string;
  source: NamedContextSource;
}

/** Entitlements granted with `--allow` (BuildKit's names). */
export interface Entitlements {
  /** `security.insecure`: RUN --security=insecure runs privileged. */
  securityInsecure: boolean;
  /** `network.host` (RUN --network=host works without it too). */
  networkHost: boolean;
  /**
   * `device` (all: every CDI device) or `device=NAME[,alias=ALIAS]`: names maps the name a Dockerfile
   * asks for to the device it gets ('' when it is the device itself).
   */
  devices?: { all: boolean; names: Record<string, string> };
}

export interface BuildRequest {
  /** Absolute path of the build context directory. */
  contextDir: string;
  /** The Dockerfile: its path (for errors and `<Dockerfile>.dockerignore`) and its bytes. */
  dockerfile: { path: string; contents: string };
  buildArgs: Record<string, string>;
  target?: string;
  /** Target platforms; empty means the host's. */
  platforms: Platform[];
  tags: string[];
  labels: Record<string, string>;
  outputs: OutputSpec[];
  /** Also push `TAG-<arch>` (e.g. `app:1.0-arm64`) for each platform. */
  perArchTags: boolean;
  noCache: boolean;
  /** Stages (names or indexes) whose steps run again even when cached (`--no-cache-filter`). */
  noCacheFilter: string[];
  network: 'default' | 'none' | 'host';
  secrets: SecretSpec[];
  /** `--ssh` agents by id: a socket to forward to, or keys served in-process. */
  ssh: SshSpec[];
  /** Seconds since the epoch; clamps file mtimes and sets `created` (reproducible builds). */
  sourceDateEpoch?: number;
  /** `--build-context` entries: each overrides a stage or image of its name (buildx named contexts). */
  namedContexts?: NamedContext[];
  /** Local layer cache directory. */
  cacheDir: string;
  /** Registry references to read cached steps from (`--cache-from type=registry,ref=…`). */
  cacheFrom: string[];
  /**
   * Registry reference to write this build's cached steps to (`--cache-to type=registry,ref=…`):
   * `min` the final image's layers, `max` every stage's.
   */
  cacheTo?: { ref: string; mode: 'min' | 'max' };
  /** OCI runtime binary to run RUN steps with; undefined picks runc or crun, whichever is installed. */
  runtime?: string;
  /**
   * How RUN steps are isolated: `auto` takes the strongest that works here (runtime as root →
   * rootless runtime → ptrace); `runc`/`crun` as root, `rootless` in a user namespace, `ptrace`
   * (proot) with no privileges at all. The image is the same whichever mode built it.
   */
  isolation: Isolation;
  /** Pull mirrors (`--registry-mirror`, then registries.conf, buildkitd.toml, daemon.json). */
  mirrors: MirrorRule[];
  /** Resolve every base image afresh, even when the cache knows its tag (`--pull`). */
  pull: boolean;
  /** Registries reached over plain http or with unverified TLS (loopback ones always are). */
  insecureRegistries: string[];
  /** Write Docker v2 schema 2 media types instead of OCI ones (for old registries). */
  dockerMediaTypes: boolean;
  /** Layer compression (`compression=` on the outputs, `--compression`); absent: gzip at level 6, no force. */
  compression?: LayerCompression;
  /** `--allow` entitlements; absent: none granted. */
  allow?: Entitlements;
  /** Where CDI spec files (RUN --device) are read, lowest priority first; absent: BuildKit's dirs. */
  cdiSpecDirs?: string[];
  /** `--add-host HOST:IP` entries, written into every RUN step's /etc/hosts. */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** Load the image into the local Docker daemon (`docker load`), as buildx's --load. */
  load?: boolean;
  /** OCI annotations to write, each at its level (buildx's --annotation). */
  annotations?: Annotation[];
  /** Attestations attached to pushed images as OCI referrers (--provenance, --sbom, --attest). */
  attest?: AttestRequest;
  /**
   * One job of a matrix (--merge-platforms, --merge-id): tags get the index over every platform of
   * the set, written by whichever job sees them all (registry's recordAndMerge).
   */
  merge?: { id: string; platforms: Platform[] };
}

// A package as the SBOM reports it: what a database, lockfile or binary says is installed.
export interface FoundPackage {
  name: string;
  version: string;
  /** Package URL (purl), e.g. pkg:deb/debian/busybox@1:1.35.0-4?arch=amd64. */
  purl: string;
  /** Where the record was read, with a leading slash. */
  source: string;
  license?: string;
  supplier?: string;
  /** How it was found, beyond `source` (e.g. `go.mod indirect requirement`). */
  note?: string;
  /** The paths the database lists as the package's (absolute, as listed; directories included). */
  files?: string[];
}

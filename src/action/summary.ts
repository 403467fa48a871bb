// What a finished build reports: the step outputs (digest, imageid, metadata, platform-digests)
// and the job summary (Markdown: platforms → digest, size, layers; tags; steps; time; cache).
import type { BuildResult } from '../engine/index.ts';
import { formatPlatform } from '../oci/index.ts';
import { buildMetadata } from '../engine/index.ts';

export function actionOutputs(result: BuildResult): Record<string, string> {
  return {
    digest: result.digest,
    imageid: result.imageId,
    metadata: JSON.stringify(buildMetadata(result)),
    'platform-digests': JSON.stringify(Object.fromEntries(result.images.map((i) => [formatPlatform(i.platform), i.digest]))),
  };
}

export interface SummaryFacts {
  result: BuildResult;
  seconds: number;
  /** One line about the layer cache (restored or not), or undefined when the cache is off. */
  cache?: string;
}

function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function summaryMarkdown({ result, seconds, cache }: SummaryFacts): string {
  const lines = ['### slipway build', ''];
  lines.push('| Platform | Digest | Size | Layers |', '| --- | --- | ---: | ---: |');
  for (const i of result.images) lines.push(`| ${formatPlatform(i.platform)} | \`${i.digest}\` | ${humanSize(i.size)} | ${i.layers} |`);
  lines.push('');
  if (result.images.length > 1) lines.push(`Index: \`${result.digest}\``, '');
  if (result.pushed.length > 0) {
    lines.push('**Pushed:**', '', ...result.pushed.map((p) => `- \`${p}\``), '');
  } else {
    lines.push('**Pushed:** nothing (push is off)', '');
  }
  if (result.loaded?.length) lines.push('**Loaded into Docker:**', '', ...result.loaded.map((l) => `- \`${l}\``), '');
  if (result.attestations) {
    const a = result.attestations;
    const kinds = [a.provenance ? `${a.provenance} SLSA provenance` : '', a.sbom ? `${a.sbom} SPDX SBOM` : ''].filter(Boolean).join(', ');
    lines.push(`**Attestations:** ${kinds} (OCI referrers of each platform manifest, listed by ${a.referrers.map((r) => (r === 'tag-schema' ? 'the referrers tag schema' : 'the referrers API')).join(' and ')})`, '');
  }
  if (result.written.length > 0) lines.push('**Written:**', '', ...result.written.map((w) => `- \`${w}\``), '');
  lines.push(`**Steps:** ${result.steps.run} run, ${result.steps.cached} cached · **Build time:** ${seconds.toFixed(1)} s`, '');
  if (cache) lines.push(`**Layer cache:** ${cache}`, '');
  for (const w of result.warnings) lines.push(`> [!WARNING]`, `> ${w.replace(/\n/g, ' ')}`, '');
  return lines.join('\n');
}

// `--allow` (buildx's flag, build-push-action's `allow` input): the entitlements a build grants.
// BuildKit's names: security.insecure (RUN --security=insecure), network.host, and device
// (every CDI device) or device=NAME[,alias=ALIAS] (one device, or a class, under a name of its own).
import { UserError } from '../errors.ts';
import { parseCsvFields } from './parse.ts';
import type { Entitlements } from './types.ts';

export function parseEntitlements(values: readonly string[]): Entitlements {
  const out: Entitlements = { securityInsecure: false, networkHost: false };
  for (const v of values) {
    if (v === '') continue;
    const eq = v.indexOf('=');
    const key = eq < 0 ? v : v.slice(0, eq);
    if (key === 'device') {
      const devices = out.devices ?? { all: false, names: {} };
      out.devices = devices;
      if (eq < 0 || v.slice(eq + 1) === '') { devices.all = true; continue; }
      const [name, ...rest] = parseCsvFields(v.slice(eq + 1));
      let alias = '';
      for (const f of rest) {
        const [k, val] = [f.slice(0, f.indexOf('=')), f.slice(f.indexOf('=') + 1)];
        if (!f.includes('=')) throw new UserError(`--allow ${v}: invalid device config "${f}"`, { hint: 'write device=NAME or device=NAME,alias=ALIAS' });
        if (k !== 'alias') throw new UserError(`--allow ${v}: unknown device config key "${k}"`, { hint: 'the only key is alias: device=NAME,alias=ALIAS' });
        alias = val;
      }
      if (alias) devices.names[alias] = name;
      else devices.names[name] ??= '';
      continue;
    }
    if (v === 'security.insecure') out.securityInsecure = true;
    else if (v === 'network.host') out.networkHost = true;
    else throw new UserError(`unknown entitlement ${v}`, { hint: 'slipway grants security.insecure, network.host, device and device=NAME[,alias=ALIAS]' });
  }
  return out;
}

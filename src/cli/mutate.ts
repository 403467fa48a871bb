// `slipway mutate REF -t NEW`: crane's mutate — config fields changed on every platform of an image,
// pushed under a new tag with only the config and the manifests new (layers mounted, not moved).
import { UserError } from '../errors.ts';
import { mutateImage } from '../mutate/index.ts';
import { parseFlags, type Command } from './command.ts';
import { withSourceAndSink } from './images.ts';

const help = `Usage: slipway mutate [OPTIONS] REF -t NEW

Changes the config of every platform of REF and pushes the result as NEW. Layers are not
downloaded or uploaded (mounted on the same registry); the base's annotations are kept.
REF and NEW may also be oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]
(see 'slipway copy --help').

Options:
  -t, --tag NAME               Where to push the result (repeatable; one repository)
      --env KEY=VALUE          Set an environment variable; KEY- removes it (repeatable)
      --entrypoint LIST        New entrypoint: a JSON array or a comma list; '' removes it
      --cmd LIST               New command: a JSON array or a comma list; '' removes it
      --workdir DIR            New working directory
      --user USER              New user
      --label KEY=VALUE        Set a label; KEY- removes it (repeatable)
      --annotation KEY=VALUE   Add an annotation to each manifest and the index (repeatable)
      --exposed-ports PORT     Expose PORT[/tcp|udp|sctp]; PORT- removes it (repeatable)
      --insecure-registry H    Reach registry H over plain http / unverified TLS (repeatable)
  -h, --help                   Show this help`;

export const mutateCommand: Command = {
  name: 'mutate',
  summary: 'Change the config of an image (env, entrypoint, cmd, labels, …) and push it under a new tag',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags('mutate', argv, {
      tag: { type: 'string', short: 't', multiple: true },
      env: { type: 'string', multiple: true },
      entrypoint: { type: 'string' },
      cmd: { type: 'string' },
      workdir: { type: 'string' },
      user: { type: 'string' },
      label: { type: 'string', multiple: true },
      annotation: { type: 'string', multiple: true },
      'exposed-ports': { type: 'string', multiple: true },
      'insecure-registry': { type: 'string', multiple: true },
    });
    if (positionals.length !== 1) throw new UserError(`slipway mutate: expected one REF, got ${positionals.length}`, { hint: "see 'slipway mutate --help'" });
    const annotations: Record<string, string> = {};
    for (const a of values.annotation ?? []) {
      const eq = a.indexOf('=');
      if (eq <= 0) throw new UserError(`--annotation "${a}": expected KEY=VALUE`);
      annotations[a.slice(0, eq)] = a.slice(eq + 1);
    }
    const res = await withSourceAndSink('mutate', positionals[0], values.tag ?? [], values['insecure-registry'], (src, sink) => mutateImage(src, sink, {
      edits: { env: values.env, entrypoint: values.entrypoint, cmd: values.cmd, workdir: values.workdir, user: values.user, labels: values.label, exposedPorts: values['exposed-ports'] },
      annotations,
    }));
    io.stdout.write(res.digest + '\n');
    return 0;
  },
};

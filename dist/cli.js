#!/usr/bin/env node
import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);

// src/errors.ts
var UserError = class extends Error {
  hint;
  constructor(message, options) {
    super(message, options?.cause === void 0 ? void 0 : { cause: options.cause });
    this.name = "UserError";
    this.hint = options?.hint;
  }
};
function describeError(err) {
  if (err instanceof UserError) return err.hint ? `${err.message}
  hint: ${err.hint}` : err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

// src/cli/version.ts
var version = "0.1.0";

// src/cli/main.ts
var commands = [];
function usage() {
  const width = Math.max(...commands.map((c) => c.name.length), 7);
  return [
    "Usage: slipway COMMAND [OPTIONS]",
    "",
    "Build OCI container images from a Dockerfile, without a Docker daemon.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${"version".padEnd(width)}  Print the version`,
    "",
    "Run 'slipway COMMAND --help' for a command's options."
  ].join("\n");
}
async function main(argv, io) {
  const [name, ...rest] = argv;
  if (name === void 0 || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(usage() + "\n");
    return name === void 0 ? 2 : 0;
  }
  if (name === "version" || name === "--version") {
    io.stdout.write(`slipway ${version}
`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`error: unknown command "${name}"

${usage()}
`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout.write(command.help.trimEnd() + "\n");
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    io.stderr.write(`error: ${describeError(err)}
`);
    if (process.env.SLIPWAY_DEBUG && err instanceof Error) io.stderr.write(`${err.stack}
`);
    return 1;
  }
}
if (import.meta.main) {
  const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stderr.isTTY) });
  process.exitCode = code;
}
export {
  main
};

// The rule table: every build check BuildKit's Dockerfile frontend has (linter/ruleset.go), with its
// name, description, documentation URL and message. One entry per rule; the checks refer to rules
// by name only through this table.
import { goQuote } from '../dockerfile/index.ts';

export interface Rule {
  name: string;
  description: string;
  /** Documentation page (InvalidBaseImagePlatform has none in BuildKit). */
  url?: string;
  /** Runs only when enabled with `# check=experimental=…`. */
  experimental?: boolean;
}

const doc = (slug: string): string => `https://docs.docker.com/go/dockerfile/rule/${slug}/`;

export const RULES = {
  StageNameCasing: { description: 'Stage names should be lowercase', url: doc('stage-name-casing') },
  FromAsCasing: { description: "The 'as' keyword should match the case of the 'from' keyword", url: doc('from-as-casing') },
  NoEmptyContinuation: { description: 'Empty continuation lines will become errors in a future release', url: doc('no-empty-continuation') },
  ConsistentInstructionCasing: { description: 'All commands within the Dockerfile should use the same casing (either upper or lower)', url: doc('consistent-instruction-casing') },
  DuplicateStageName: { description: 'Stage names should be unique', url: doc('duplicate-stage-name') },
  ReservedStageName: { description: 'Reserved words should not be used as stage names', url: doc('reserved-stage-name') },
  JSONArgsRecommended: { description: 'JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals', url: doc('json-args-recommended') },
  MaintainerDeprecated: { description: 'The MAINTAINER instruction is deprecated, use a label instead to define an image author', url: doc('maintainer-deprecated') },
  UndefinedArgInFrom: { description: 'FROM command must use declared ARGs', url: doc('undefined-arg-in-from') },
  WorkdirRelativePath: { description: 'Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes', url: doc('workdir-relative-path') },
  UndefinedVar: { description: 'Variables should be defined before their use', url: doc('undefined-var') },
  MultipleInstructionsDisallowed: { description: 'Multiple instructions of the same type should not be used in the same stage', url: doc('multiple-instructions-disallowed') },
  LegacyKeyValueFormat: { description: 'Legacy key/value format with whitespace separator should not be used', url: doc('legacy-key-value-format') },
  InvalidBaseImagePlatform: { description: 'Base image platform does not match expected target platform' },
  RedundantTargetPlatform: { description: 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior', url: doc('redundant-target-platform') },
  SecretsUsedInArgOrEnv: { description: 'Sensitive data should not be used in the ARG or ENV commands', url: doc('secrets-used-in-arg-or-env') },
  InvalidDefaultArgInFrom: { description: 'Default value for global ARG results in an empty or invalid base image name', url: doc('invalid-default-arg-in-from') },
  FromPlatformFlagConstDisallowed: { description: 'FROM --platform flag should not use a constant value', url: doc('from-platform-flag-const-disallowed') },
  CopyIgnoredFile: { description: 'Attempting to Copy file that is excluded by .dockerignore', url: doc('copy-ignored-file') },
  InvalidDefinitionDescription: {
    description: 'Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment.',
    url: doc('invalid-definition-description'), experimental: true,
  },
  ExposeProtoCasing: { description: 'Protocol in EXPOSE instruction should be lowercase', url: doc('expose-proto-casing') },
  ExposeInvalidFormat: { description: 'IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release', url: doc('expose-invalid-format') },
} satisfies Record<string, Omit<Rule, 'name'>>;

export type RuleName = keyof typeof RULES;

export const ruleNames = Object.keys(RULES) as RuleName[];

export function rule(name: RuleName): Rule {
  return { name, ...RULES[name] };
}

const q = goQuote;

/** The message of each rule, as BuildKit formats it. */
export const messages = {
  StageNameCasing: (stage: string) => `Stage name '${stage}' should be lowercase`,
  FromAsCasing: (from: string, as: string) => `'${as}' and '${from}' keywords' casing do not match`,
  NoEmptyContinuation: () => 'Empty continuation line',
  ConsistentInstructionCasing: (command: string, casing: string) => `Command '${command}' should match the case of the command majority (${casing})`,
  DuplicateStageName: (stage: string) => `Duplicate stage name ${q(stage)}, stage names should be unique`,
  ReservedStageName: (stage: string) => `Stage name should not use the same name as reserved stage ${q(stage)}`,
  JSONArgsRecommended: (instruction: string) => `JSON arguments recommended for ${instruction} to prevent unintended behavior related to OS signals`,
  MaintainerDeprecated: () => 'Maintainer instruction is deprecated in favor of using label',
  UndefinedArgInFrom: (arg: string, suggest?: string) => `FROM argument '${arg}' is not declared${suggest ? ` (did you mean ${suggest}?)` : ''}`,
  WorkdirRelativePath: (workdir: string) => `Relative workdir ${q(workdir)} can have unexpected results if the base image changes`,
  UndefinedVar: (name: string, suggest?: string) => `Usage of undefined variable '$${name}'${suggest ? ` (did you mean $${suggest}?)` : ''}`,
  MultipleInstructionsDisallowed: (instruction: string) => `Multiple ${instruction} instructions should not be used in the same stage because only the last one will be used`,
  LegacyKeyValueFormat: (command: string) => `"${command} key=value" should be used instead of legacy "${command} key value" format`,
  InvalidBaseImagePlatform: (image: string, expected: string, actual: string) => `Base image ${image} was pulled with platform ${q(actual)}, expected ${q(expected)} for current build`,
  RedundantTargetPlatform: (platformVar: string) => `Setting platform to predefined ${platformVar} in FROM is redundant as this is the default behavior`,
  SecretsUsedInArgOrEnv: (instruction: string, key: string) => `Do not use ARG or ENV instructions for sensitive data (${instruction} ${q(key)})`,
  InvalidDefaultArgInFrom: (baseName: string) => `Default value for ARG ${baseName} results in empty or invalid base image name`,
  FromPlatformFlagConstDisallowed: (platform: string) => `FROM --platform flag should not use constant value ${q(platform)}`,
  CopyIgnoredFile: (command: string, file: string) => `Attempting to ${command} file ${q(file)} that is excluded by .dockerignore`,
  InvalidDefinitionDescription: (instruction: string, name: string) => `Comment for ${instruction} should follow the format: \`# ${name} <description>\``,
  ExposeProtoCasing: (port: string) => `Defined protocol '${port}' in EXPOSE instruction should be lowercase`,
  ExposeInvalidFormat: (port: string) => `EXPOSE instruction should not define an IP address or host-port mapping, found '${port}'`,
} satisfies Record<RuleName, (...args: never[]) => string>;

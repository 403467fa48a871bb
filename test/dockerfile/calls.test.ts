// `--call targets` / `--call outline` text, as buildx prints BuildKit's subrequest results
// (docs.docker.com/reference/cli/docker/buildx/build "--call": targets, outline; descriptions
// come from the comment right above FROM / ARG that starts with the stage or arg name).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planBuild } from '../../src/dockerfile/stages.ts';
import { formatTargets, formatOutline, listTargets, outlineTarget } from '../../src/dockerfile/calls.ts';

const amd64 = { os: 'linux', architecture: 'amd64' };
const df = `# syntax=docker/dockerfile:1

# GO_VERSION sets the Go version for the build
ARG GO_VERSION=1.22
ARG UNUSED_GLOBAL=1

# base-builder is the base stage for building the project
FROM golang:\${GO_VERSION} AS base-builder

# vendored installs module dependencies
FROM base-builder AS vendored
RUN --mount=type=bind,target=.,rw \\
  --mount=type=cache,target=/go/pkg/mod \\
  go mod tidy && go mod vendor

# build creates the binary
FROM base-builder AS build
# BUILDTAGS adds tags to the build
ARG BUILDTAGS=netgo
ARG GOARCH
RUN --mount=type=secret,id=github_token,required --mount=type=secret,id=npmrc --mount=type=ssh \\
  go build -tags "$BUILDTAGS"

FROM scratch
COPY --from=build /out /
`;

test('--call targets: every stage with its description, the last one marked default', () => {
  const p = planBuild({ dockerfile: df, targetPlatform: amd64, buildPlatform: amd64 });
  assert.equal(formatTargets(p), [
    'TARGET         DESCRIPTION',
    'base-builder   is the base stage for building the project',
    'vendored       installs module dependencies',
    'build          creates the binary',
    '(default)      ',
    '',
  ].join('\n'));
  assert.deepEqual(listTargets(p).map((t) => [t.name, t.default, t.base]), [['base-builder', false, 'golang:${GO_VERSION}'], ['vendored', false, 'base-builder'], ['build', false, 'base-builder'], ['', true, 'scratch']]);
});

test('--call outline: target header, build args with values and comments, secrets, SSH', () => {
  const p = planBuild({ dockerfile: df, target: 'build', buildArgs: { BUILDTAGS: 'osusergo' }, targetPlatform: amd64, buildPlatform: amd64 });
  assert.equal(formatOutline(p), [
    'TARGET:      build',
    'DESCRIPTION: creates the binary',
    '',
    'BUILD ARG    VALUE      DESCRIPTION',
    'GO_VERSION   1.22       sets the Go version for the build',
    'BUILDTAGS    osusergo   adds tags to the build',
    'GOARCH                  ',
    '',
    'SECRET         REQUIRED',
    'github_token   true',
    'npmrc          ',
    '',
    'SSH       REQUIRED',
    'default   ',
    '',
    '',
  ].join('\n'));
  const o = outlineTarget(p);
  assert.deepEqual(o.args.map((a) => a.name), ['GO_VERSION', 'BUILDTAGS', 'GOARCH']);
});

test('--call outline: the default (unnamed) target with no args prints only what it has', () => {
  const p = planBuild({ dockerfile: 'FROM alpine\nRUN true\n', targetPlatform: amd64, buildPlatform: amd64 });
  assert.equal(formatOutline(p), '');
  const q = planBuild({ dockerfile: 'FROM alpine\nARG A=1\n', targetPlatform: amd64, buildPlatform: amd64 });
  assert.equal(formatOutline(q), 'BUILD ARG   VALUE   DESCRIPTION\nA           1       \n\n');
});

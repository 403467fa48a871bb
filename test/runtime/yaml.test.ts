// The block YAML subset CDI spec files are written in: BuildKit's own fixtures and nvidia-ctk's
// layout parse to the JSON they mean; what the subset leaves out is an error that says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml, YamlError } from '../../src/runtime/yaml.ts';

test('YAML: BuildKit\'s CDI fixture (nested mappings, "- key:" items, quoted and plain scalars, a bool)', () => {
  const text = `cdiVersion: "0.6.0"
kind: "vendor1.com/deviceclass"
annotations:
  foo.bar.baz: FOO
  org.mobyproject.buildkit.device.autoallow: true
devices:
  - name: foo
    annotations:
      org.mobyproject.buildkit.device.class: class1
    containerEdits:
      env:
        - FOO=injected
  - name: qux   # a comment
    containerEdits:
      env:
        - QUX=injected
`;
  assert.deepEqual(parseYaml(text), {
    cdiVersion: '0.6.0', kind: 'vendor1.com/deviceclass', annotations: { 'foo.bar.baz': 'FOO', 'org.mobyproject.buildkit.device.autoallow': true },
    devices: [
      { name: 'foo', annotations: { 'org.mobyproject.buildkit.device.class': 'class1' }, containerEdits: { env: ['FOO=injected'] } },
      { name: 'qux', containerEdits: { env: ['QUX=injected'] } },
    ],
  });
});

test('YAML: go-yaml layout (sequences at their key\'s indentation), ---, numbers, octal, flow lists, single quotes', () => {
  const text = `---
cdiVersion: 0.5.0
containerEdits:
  deviceNodes:
  - path: /dev/nvidia-modeset
    major: 195
    fileMode: 0666
  mounts:
  - containerPath: /usr/bin/x
    hostPath: '/usr/bin/it''s'
    options: [ro, nosuid, "bind"]
devices:
- name: "0"
  containerEdits: {}
kind: nvidia.com/gpu
`;
  assert.deepEqual(parseYaml(text), {
    cdiVersion: '0.5.0',
    containerEdits: {
      deviceNodes: [{ path: '/dev/nvidia-modeset', major: 195, fileMode: 0o666 }],
      mounts: [{ containerPath: '/usr/bin/x', hostPath: "/usr/bin/it's", options: ['ro', 'nosuid', 'bind'] }],
    },
    devices: [{ name: '0', containerEdits: {} }],
    kind: 'nvidia.com/gpu',
  });
});

test('YAML: what the subset does not read is an error naming the line', () => {
  for (const [text, message] of [
    ['a: &x 1\nb: *x\n', /line 1: "&" \(anchors, aliases, tags, block scalars\)/],
    ['a: |\n  text\n', /line 1: "\|"/],
    ['a: {b: 1}\n', /line 1: flow collections other than/],
    ['a: 1\n---\nb: 2\n', /line 2: one YAML document only/],
    ['a: 1\n    b: 2\n', /line 2: unexpected indentation/],
    ['a: 1\na: 2\n', /line 2: key "a" is given twice/],
    ['just text\n', /line 1: expected "key: value"/],
  ] as const) {
    assert.throws(() => parseYaml(text), (e: unknown) => e instanceof YamlError && message.test(e.message), text);
  }
});

// ESLint flat config: typescript-eslint's recommended rules on everything we write, plus the
// structure rules of src/: a folder's index.ts is its only door (scripts/lint/doors.js), files stay
// under 400 lines, and functions take at most 5 positional parameters (an options object beyond).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import doors from './scripts/lint/doors.js';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.tools/', '.cache/', 'out/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setImmediate: 'readonly', URL: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // The CLI's launcher (dist/cli.js) is CommonJS: Node starts it without the ES module loader.
    files: ['scripts/**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', __dirname: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { slipway: { rules: { doors } } },
    rules: {
      'slipway/doors': ['error', { root: 'src' }],
      'max-lines': ['error', { max: 400 }],
      'max-params': ['error', 5],
    },
  },
);

/**
 * cli: the `slipway` command line (main.ts is the bundle's entry, dist/cli.js): flags → typed
 * requests, progress on the terminal, results on stdout. One module per command. Imports the
 * other folders through their doors; nothing in src/ imports cli/.
 */
export { main } from './main.ts';

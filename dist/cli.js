#!/usr/bin/env node
import module from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
const xdg = process.env.XDG_CACHE_HOME;
const base = xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME || homedir(), '.cache');
module.enableCompileCache?.(process.env.NODE_COMPILE_CACHE || join(base, 'slipway-compile-cache'));
await (await import('./cli-main.js')).runAsProcess();

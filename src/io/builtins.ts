// Node built-ins that only some paths need, loaded on first use: importing one at the top of a module
// costs every command its load at start-up (child_process 7 ms, crypto 5 ms on this machine), and a
// plain verify needs neither. Node caches a built-in after its first load: no state is kept here.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** node:crypto, loaded when first called. */
export const nodeCrypto = (): typeof import('node:crypto') => require('node:crypto') as typeof import('node:crypto');

/** node:child_process, loaded when first called. */
export const childProcess = (): typeof import('node:child_process') => require('node:child_process') as typeof import('node:child_process');

/** node:zlib, loaded when first called. */
export const nodeZlib = (): typeof import('node:zlib') => require('node:zlib') as typeof import('node:zlib');

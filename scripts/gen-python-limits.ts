/**
 * Writes sdk/python/forkd/_limits.py from packages/protocol: the release version, the socket file
 * name, every limit and default, and the error codes, so the Python SDK declares none of them
 * itself. Run by `npm run openapi`; tests/python-limits.test.ts fails when the file is stale.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CALL_TIMEOUT_SECS, CLIENT_DEFAULTS, ERROR_CODES, FORKD_VERSION, LIMITS, MACHINE_LIMITS, SOCKET_FILE } from '@forkd/protocol';

export const PYTHON_LIMITS_FILE = fileURLToPath(new URL('../sdk/python/forkd/_limits.py', import.meta.url));

type Value = string | number | { readonly [k: string]: Value };

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function literal(v: Value, indent: string, keys: (k: string) => string): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v);
  const inner = `${indent}    `;
  const lines = Object.entries(v).map(([k, x]) => `${inner}${JSON.stringify(keys(k))}: ${literal(x, inner, keys)},`);
  return `{\n${lines.join('\n')}\n${indent}}`;
}

export function pythonLimitsModule(): string {
  const table = (name: string, v: Value, type: string, keys: (k: string) => string = snake) => `${name}: ${type} = ${literal(v, '', keys)}\n`;
  return [
    '"""forkd\'s limits, defaults and error codes, generated from packages/protocol by',
    'scripts/gen-python-limits.ts (`npm run openapi`). Do not edit: a test fails when it is stale."""',
    'from typing import Any, Dict',
    '',
    `FORKD_VERSION = ${JSON.stringify(FORKD_VERSION)}`,
    '#: The local daemon\'s socket file inside the forkd home.',
    `SOCKET_FILE = ${JSON.stringify(SOCKET_FILE)}`,
    '',
    '#: Limits of the agent protocol and of what one call may carry.',
    table('LIMITS', LIMITS, 'Dict[str, Any]'),
    '#: Limits of the machines and of how many of them one request makes.',
    table('MACHINE_LIMITS', MACHINE_LIMITS, 'Dict[str, Any]'),
    '#: Timeouts (seconds) of REST calls that run something in a sandbox: the defaults and the cap.',
    table('CALL_TIMEOUT_SECS', CALL_TIMEOUT_SECS, 'Dict[str, int]'),
    '#: The SDKs\' own defaults (E2B\'s).',
    table('CLIENT_DEFAULTS', CLIENT_DEFAULTS, 'Dict[str, int]'),
    '#: Every stable error code and its HTTP status.',
    table('ERROR_CODES', ERROR_CODES, 'Dict[str, int]', (k) => k),
  ].join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(PYTHON_LIMITS_FILE, pythonLimitsModule());
}

#!/usr/bin/env node
// Finds every *.test.ts and runs them with node's test runner (via tsx), one file at a time:
// integration tests boot real VMs and the machine has 2 cores.
// --unit: only tests that need no VM (files not under an `integration` name).
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = ['packages', 'tests', 'bench'];
const files = [];
function walk(dir) {
  let entries = [];
  try { entries = readdirSync(dir); } catch { return; }
  for (const e of entries) {
    if (e === 'node_modules' || e === 'dist') continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p);
    else if (e.endsWith('.test.ts')) files.push(p);
  }
}
roots.forEach(walk);
const unitOnly = process.argv.includes('--unit');
const selected = files.filter((f) => !unitOnly || !/integration/.test(f)).sort((a, b) => {
  // Fast unit tests first, VM integration tests last.
  const ia = /integration/.test(a) ? 1 : 0;
  const ib = /integration/.test(b) ? 1 : 0;
  return ia - ib || a.localeCompare(b);
});
const extra = process.argv.slice(2).filter((a) => a !== '--unit');
// Daemons that tests start on demand (the CLI's and MCP's embedded default) leave soon after.
const env = { ...process.env, FORKD_DAEMON_IDLE_EXIT_SECS: process.env.FORKD_DAEMON_IDLE_EXIT_SECS ?? '20' };
// Beside spec: each file's wall time, in test-results/file-times.txt (what CI's minutes are spent on).
mkdirSync('test-results', { recursive: true });
const reporters = ['--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=./scripts/file-times-reporter.mjs', '--test-reporter-destination=test-results/file-times.txt'];
const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', '--test', '--test-concurrency=1', ...reporters, ...extra, ...selected], { stdio: 'inherit', env });
process.exit(r.status ?? 1);

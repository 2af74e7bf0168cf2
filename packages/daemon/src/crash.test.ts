import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Jobs } from './jobs.js';
import type { Journal } from './state/journal.js';

const here = path.dirname(fileURLToPath(import.meta.url));

test('an unhandled rejection is logged and the daemon process keeps running', () => {
  // A child process: the handler is process-wide, and without it Node exits with code 1.
  const script = `
    import pino from 'pino';
    import { logUnhandledRejections } from ${JSON.stringify(path.join(here, 'daemon.ts'))};
    logUnhandledRejections(pino({ base: null }, pino.destination({ dest: 1, sync: true })));
    void Promise.reject(new Error('background failure'));
    setTimeout(() => { console.log('still serving'); }, 200);
  `;
  const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: here, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /background failure.*unhandled promise rejection/);
  assert.match(r.stdout, /still serving/);
});

test('Jobs marks interrupted jobs failed without an unhandled rejection when the journal write fails', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  try {
    const running = { id: 'job-1', kind: 'branch', status: 'running', created_at_unix: 1, started_at_unix: 1, finished_at_unix: null, progress: null, result: null, error: null };
    const journal = {
      all: () => [running],
      put: () => Promise.reject(new Error('EIO: journal write failed')),
    } as unknown as Journal;
    const jobs = new Jobs(journal);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(jobs.get('job-1').status, 'failed');
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});

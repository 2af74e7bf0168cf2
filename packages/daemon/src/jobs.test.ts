import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError, LIMITS } from '@forkd/protocol';
import { Journal } from './state/journal.js';
import { Jobs } from './jobs.js';

describe('job error records', () => {
  it('keep a bounded message and drop large details (a guest chooses both)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-jobs-'));
    try {
      const { journal } = await Journal.open(path.join(dir, 'state.jsonl'));
      const jobs = new Jobs(journal);
      const { job, done } = await jobs.start('snapshot.diff', 'local', async () => {
        throw new ForkdError('FORKD_E_AGENT_ERROR', 'm'.repeat(1024 * 1024), { method: 'exec', guest_code: 'X', blob: 'b'.repeat(100_000) });
      });
      await assert.rejects(done);
      const rec = jobs.get(job.id);
      assert.equal(rec.error?.code, 'FORKD_E_AGENT_ERROR');
      assert.ok(rec.error!.message.length < LIMITS.maxErrorMessageChars + 32);
      assert.equal(rec.error?.details, undefined);
      assert.ok(fs.statSync(path.join(dir, 'state.jsonl')).size < 64 * 1024);
      await journal.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditLog, UNAUTHENTICATED_AUDIT_LINES, type AuditRecord } from './audit.js';

const record = (caller: string): AuditRecord => ({ time: new Date().toISOString(), caller, remote: '192.0.2.1', method: 'POST', path: '/v1/sandboxes', route: '/v1/sandboxes', resource: null, status: 401, latency_ms: 0.1, request_id: 'r' });

test('unauthenticated requests are rate-limited in the audit log; the next line counts what was left out', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fdd-audit-'));
  try {
    const file = path.join(dir, 'audit.log');
    const log = new AuditLog(file);
    const { perWindow, windowMs } = UNAUTHENTICATED_AUDIT_LINES;
    const t0 = 1_000_000;
    for (let i = 0; i < perWindow + 500; i++) log.writeUnauthenticated(record('unauthenticated'), t0 + i);
    log.write(record('tok-12345678')); // authenticated lines are never limited
    log.writeUnauthenticated(record('unauthenticated'), t0 + windowMs + 1);
    await log.close();
    const lines = (await fs.readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    assert.equal(lines.length, perWindow + 2);
    assert.equal(lines.filter((l) => l.caller === 'tok-12345678').length, 1);
    assert.equal(lines.at(-1)!.suppressed_before, 500);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

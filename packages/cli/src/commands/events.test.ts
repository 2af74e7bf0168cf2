import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventLine } from './events.js';

test('an event line: offset, time, kind, ids, owner, details; guest-influenced text cannot inject terminal controls', () => {
  const line = eventLine({ id: 7, time: '2026-01-01T00:00:00.000Z', time_unix_ms: 0, owner: 'alice', kind: 'killed', sandbox_id: 'sb-0123456789abcdef', snapshot_tag: null, details: { reason: 'request', note: 'x\u001b[2Jy', n: 3 } });
  assert.match(line, /^ {5}7 {2}2026-01-01T00:00:00.000Z {2}killed {11}sb-0123456789abcdef {2}- {2}alice {2}reason=request /);
  assert.ok(!line.includes('\u001b'), line);
  assert.match(line, /n=3$/);
});

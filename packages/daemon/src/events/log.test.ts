import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EventLog } from './log.js';

const tmp = () => fs.mkdtemp(path.join(os.tmpdir(), 'forkd-events-'));
const ev = (i: number, owner = 'alice') => ({ owner, kind: 'created' as const, sandbox_id: `sb-${String(i).padStart(16, '0')}`, details: { i } });

test('offsets grow by one, survive a reopen, and reads resume after an offset', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir);
  for (let i = 0; i < 5; i++) await log.append(ev(i));
  assert.equal(log.lastId, 4);
  assert.deepEqual((await log.read(2, {})).map((e) => e.id), [3, 4]);
  await log.close();
  const { log: again } = await EventLog.open(dir);
  assert.equal(again.lastId, 4);
  assert.deepEqual((await again.read(-1, {})).map((e) => e.details.i), [0, 1, 2, 3, 4]);
  const next = await again.append(ev(5));
  assert.equal(next.id, 5);
  await again.close();
});

test('filters: owner visibility, kinds and sandbox ids', async () => {
  const { log } = await EventLog.open(await tmp());
  await log.append(ev(1, 'alice'));
  await log.append(ev(2, 'bob'));
  await log.append({ owner: 'alice', kind: 'killed', sandbox_id: ev(1).sandbox_id, details: { reason: 'request' } });
  assert.deepEqual((await log.read(-1, { visible: (o) => o === 'bob' })).map((e) => e.owner), ['bob']);
  assert.deepEqual((await log.read(-1, { kinds: ['killed'] })).map((e) => e.kind), ['killed']);
  assert.deepEqual((await log.read(-1, { sandboxIds: [ev(1).sandbox_id] })).map((e) => e.id), [0, 2]);
  await log.close();
});

test('reads older than the memory tail come from disk, across segments', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir, { memoryTail: 4, segmentBytes: 600, maxBytes: 1 << 20 });
  for (let i = 0; i < 40; i++) await log.append(ev(i));
  assert.ok((await fs.readdir(dir)).length > 3, 'several segments');
  assert.deepEqual((await log.read(9, {}, 5)).map((e) => e.id), [10, 11, 12, 13, 14]);
  assert.equal((await log.read(-1, {})).length, 40);
  await log.close();
});

test('retention: segments past the window go, the newest stays and numbering continues', async () => {
  const dir = await tmp();
  let now = 1_000_000;
  const { log } = await EventLog.open(dir, { retentionMs: 10_000, segmentBytes: 600, now: () => now });
  for (let i = 0; i < 20; i++) await log.append(ev(i));
  now += 60_000;
  await log.close();
  const { log: again } = await EventLog.open(dir, { retentionMs: 10_000, segmentBytes: 600, now: () => now });
  assert.equal((await fs.readdir(dir)).length, 1, 'only the newest segment is kept');
  assert.deepEqual(await again.read(-1, {}), [], 'its old events are past the window');
  assert.equal(again.oldestId, null);
  assert.equal((await again.append(ev(20))).id, 20);
  assert.deepEqual((await again.read(-1, {})).map((e) => e.id), [20]);
  await again.close();
});

test('size cap: the oldest segments are dropped once the log is over it', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir, { maxBytes: 64 * 1024, segmentBytes: 8 * 1024 });
  for (let i = 0; i < 2000; i++) log.emit(ev(i));
  await log.append(ev(2000));
  assert.ok(log.bytesOnDisk <= 64 * 1024 + 8 * 1024, `${log.bytesOnDisk} bytes on disk`);
  const kept = await log.read(-1, {}, 1000);
  assert.ok(kept[0]!.id > 0, 'the oldest events went');
  assert.equal(log.oldestId, kept[0]!.id);
  await log.close();
});

test('a torn last line is dropped and appends go to a new segment', async () => {
  const dir = await tmp();
  const { log } = await EventLog.open(dir);
  await log.append(ev(0));
  await log.append(ev(1));
  await log.close();
  const [seg] = await fs.readdir(dir);
  await fs.appendFile(path.join(dir, seg!), '0123456789abcdef {"k":"event","id":"2","v":{"id":2');
  const { log: again, tornTail } = await EventLog.open(dir);
  assert.equal(tornTail, true);
  assert.equal((await again.append(ev(2))).id, 2);
  assert.equal((await fs.readdir(dir)).length, 2);
  await again.close();
  const { log: third, badLines } = await EventLog.open(dir);
  assert.equal(badLines, 0);
  assert.deepEqual((await third.read(-1, {})).map((e) => e.id), [0, 1, 2]);
  await third.close();
});

test('subscribers see events only once durable, in order; a failed write rejects and loses nothing acknowledged', async () => {
  let fail = false;
  const { log } = await EventLog.open(await tmp(), { datasync: async (fh) => { if (fail) throw new Error('EIO'); await fh.datasync(); } });
  const seen: number[] = [];
  log.subscribe((e) => seen.push(e.id));
  await log.append(ev(0));
  fail = true;
  await assert.rejects(log.append(ev(1)), /EIO/);
  fail = false;
  await log.append(ev(2));
  assert.deepEqual(seen, [0, 2]);
  assert.deepEqual((await log.read(-1, {})).map((e) => e.id), [0, 2]);
  await log.close();
});

test('oversized details are replaced by a note', async () => {
  const { log } = await EventLog.open(await tmp());
  const e = await log.append({ owner: 'a', kind: 'created', details: { big: 'x'.repeat(10_000) } });
  assert.equal(e.details.truncated, true);
  await log.close();
});

test('bad options are refused', async () => {
  await assert.rejects(EventLog.open(await tmp(), { retentionMs: -1 }), /retention/);
  await assert.rejects(EventLog.open(await tmp(), { maxBytes: 10 }), /max bytes/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Journal, decodeJournal, encodeEntry, type JournalEntry } from './journal.js';

async function tmpFile(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-journal-'));
  return path.join(dir, 'state.jsonl');
}

test('acknowledged puts and deletes survive a reopen; compaction keeps only live records', async () => {
  const file = await tmpFile();
  const { journal } = await Journal.open(file);
  await journal.put('sandbox', 'a', { n: 1 });
  await journal.put('sandbox', 'b', { n: 2 });
  await journal.put('sandbox', 'a', { n: 3 });
  await journal.delete('sandbox', 'b');
  await Promise.all(Array.from({ length: 50 }, (_, i) => journal.put('job', `j${i}`, { i })));
  // No close: a crash right after the acknowledgements.
  const { journal: again } = await Journal.open(file);
  assert.deepEqual(again.get('sandbox', 'a'), { n: 3 });
  assert.equal(again.get('sandbox', 'b'), undefined);
  assert.equal(again.all('job').length, 50);
  const lines = (await fs.readFile(file, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 51, 'compaction writes one line per live record');
  await again.close();
  await journal.close();
});

test('a torn or corrupted tail is dropped, everything before it is kept', () => {
  fc.assert(
    fc.property(fc.array(fc.record({ k: fc.constantFrom('sandbox', 'job'), id: fc.string({ maxLength: 8 }), v: fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer())) }), { maxLength: 20 }), fc.nat(), fc.string(), (entries: JournalEntry[], cut, garbage) => {
      const text = entries.map(encodeEntry).join('');
      const at = cut % (text.length + 1);
      const torn = text.slice(0, at) + garbage;
      const { entries: got } = decodeJournal(torn);
      // Whatever survives is a prefix of what was written.
      assert.deepEqual(got, JSON.parse(JSON.stringify(entries.slice(0, got.length))));
      // Every line completed before the cut survives.
      const complete = text.slice(0, at).split('\n').length - 1;
      assert.ok(got.length >= complete, `${got.length} < ${complete}`);
    }),
  );
});

test('a flipped byte in an earlier line stops replay there (checksums)', () => {
  const text = [encodeEntry({ k: 's', id: '1', v: { a: 1 } }), encodeEntry({ k: 's', id: '2', v: { a: 2 } })].join('');
  const bad = text.replace('"a":1', '"a":7');
  const { entries, dropped } = decodeJournal(bad);
  assert.equal(entries.length, 0);
  assert.equal(dropped, 1);
});

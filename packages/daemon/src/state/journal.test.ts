import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Journal, MAX_LINE_BYTES, encodeEntry, type JournalEntry, type JournalIo } from './journal.js';
import { ForkdError } from '@forkd/protocol';

async function tmpFile(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-journal-'));
  return path.join(dir, 'state.jsonl');
}

const lines = (text: string): string[] => text.split('\n').filter((l) => l.length > 0);

test('acknowledged puts and deletes survive a reopen; compaction keeps only live records', async () => {
  const file = await tmpFile();
  const { journal } = await Journal.open(file);
  await journal.put('sandbox', 'a', { n: 1 });
  await journal.put('sandbox', 'b', { n: 2 });
  await journal.put('sandbox', 'a', { n: 3 });
  await journal.delete('sandbox', 'b');
  await Promise.all(Array.from({ length: 50 }, (_, i) => journal.put('job', `j${i}`, { i })));
  await journal.close(); // close neither compacts nor writes: the file is what a crash would leave
  const { journal: again, replay } = await Journal.open(file);
  assert.deepEqual(replay, { tornTail: false, badLines: 0, keptAside: null });
  assert.deepEqual(again.get('sandbox', 'a'), { n: 3 });
  assert.equal(again.get('sandbox', 'b'), undefined);
  assert.equal(again.all('job').length, 50);
  assert.equal(lines(await fs.readFile(file, 'utf8')).length, 51, 'compaction writes one line per live record');
  await again.close();
});

test('a torn final line (no newline) is dropped silently; nothing is kept aside', async () => {
  const file = await tmpFile();
  const whole = [1, 2, 3].map((n) => encodeEntry({ k: 'sandbox', id: `sb-${n}`, v: { n } })).join('');
  const torn = encodeEntry({ k: 'sandbox', id: 'sb-4', v: { n: 4 } });
  await fs.writeFile(file, whole + torn.slice(0, torn.length - 5));
  const { journal, replay } = await Journal.open(file);
  assert.deepEqual(replay, { tornTail: true, badLines: 0, keptAside: null });
  assert.deepEqual(journal.all('sandbox'), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.deepEqual((await fs.readdir(path.dirname(file))).filter((f) => f.includes('corrupt')), []);
  await journal.close();
});

test('a corrupted middle line costs that line only, and the original file is kept aside', async () => {
  const file = await tmpFile();
  const written = [1, 2, 3, 4].map((n) => encodeEntry({ k: 'sandbox', id: `sb-${n}`, v: { n } }));
  written[1] = written[1]!.replace('"n":2', '"n":9'); // one flipped value: its checksum fails
  written.splice(3, 0, 'not a journal line\n', '\n'); // and two lines that are not even checksummed
  const original = written.join('');
  await fs.writeFile(file, original);
  const { journal, replay } = await Journal.open(file);
  assert.equal(replay.badLines, 3);
  assert.equal(replay.tornTail, false);
  assert.deepEqual(journal.all('sandbox'), [{ n: 1 }, { n: 3 }, { n: 4 }]);
  assert.ok(replay.keptAside?.startsWith(`${file}.corrupt-`), String(replay.keptAside));
  assert.equal(await fs.readFile(replay.keptAside!, 'utf8'), original, 'the original bytes are kept aside');
  assert.equal(lines(await fs.readFile(file, 'utf8')).length, 3);
  await journal.close();
});

test('a line over the line cap is skipped as one bad line without stopping replay', async () => {
  const file = await tmpFile();
  const fh = await fs.open(file, 'w');
  await fh.write(encodeEntry({ k: 'sandbox', id: 'before', v: 1 }));
  const junk = Buffer.alloc(4 << 20, 0x61);
  for (let written = 0; written <= MAX_LINE_BYTES; written += junk.length) await fh.write(junk);
  await fh.write('\n' + encodeEntry({ k: 'sandbox', id: 'after', v: 2 }));
  await fh.close();
  const { journal, replay } = await Journal.open(file);
  assert.equal(replay.badLines, 1);
  assert.deepEqual(journal.all('sandbox'), [1, 2]);
  await fs.rm(replay.keptAside!);
  await journal.close();
});

test('a flipped byte anywhere costs at most the line it is in (property)', async () => {
  const entry = fc.record({ k: fc.constantFrom('sandbox', 'job'), id: fc.string({ maxLength: 8 }), v: fc.oneof(fc.constant(null), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer())) });
  await fc.assert(
    fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 12 }), fc.nat(), fc.integer({ min: 1, max: 255 }), async (entries: JournalEntry[], where, flip) => {
      const encoded = entries.map(encodeEntry);
      const text = Buffer.from(encoded.join(''));
      const at = where % text.length;
      const wasNewline = text[at] === 0x0a;
      text[at]! ^= flip;
      const file = await tmpFile();
      await fs.writeFile(file, text);
      const { journal, replay } = await Journal.open(file);
      await journal.close();
      // The model: every line but the one holding the flipped byte (and the next one, when its
      // newline was flipped away and the two became one line) is applied in order.
      const hit = encoded.findIndex((_, i) => Buffer.byteLength(encoded.slice(0, i + 1).join('')) > at);
      const model = new Map<string, unknown>();
      entries.forEach((e, i) => {
        if (i === hit || (wasNewline && i === hit + 1)) return;
        const key = `${e.k}/${e.id}`;
        if (e.v === null) model.delete(key);
        else model.set(key, JSON.parse(JSON.stringify(e.v)));
      });
      const got = new Map<string, unknown>();
      for (const k of ['sandbox', 'job']) for (const e of entries.filter((x) => x.k === k)) if (journal.get(k, e.id) !== undefined) got.set(`${k}/${e.id}`, journal.get(k, e.id));
      assert.deepEqual(got, model);
      assert.ok(replay.badLines + (replay.tornTail ? 1 : 0) <= 2, 'a flipped newline can merge or split at most the lines around it');
      await fs.rm(path.dirname(file), { recursive: true, force: true });
    }),
    { numRuns: 30 },
  );
});

test('a journal of 600 MB of history (past V8\'s 512 MiB string limit) opens with the right records', { timeout: 120_000 }, async () => {
  const file = await tmpFile();
  try {
    // One block: 100 sandboxes put (4 KiB each), the odd ones deleted; written until the file passes 600 MB.
    const pad = 'x'.repeat(4096);
    const block: string[] = [];
    for (let i = 0; i < 100; i++) block.push(encodeEntry({ k: 'sandbox', id: `sb-${i}`, v: { i, pad } }));
    for (let i = 1; i < 100; i += 2) block.push(encodeEntry({ k: 'sandbox', id: `sb-${i}`, v: null }));
    const one = Buffer.from(block.join(''));
    const big = Buffer.concat(Array.from({ length: Math.ceil((32 << 20) / one.length) }, () => one));
    const fh = await fs.open(file, 'w');
    let size = 0;
    while (size < 600e6) size += (await fh.write(big)).bytesWritten;
    await fh.write(encodeEntry({ k: 'sandbox', id: 'sb-1', v: { i: 1, last: true } }));
    await fh.close();
    const { journal, replay } = await Journal.open(file);
    assert.deepEqual(replay, { tornTail: false, badLines: 0, keptAside: null });
    const kept = journal.all<{ i: number }>('sandbox').map((r) => r.i).sort((a, b) => a - b);
    assert.deepEqual(kept, [1, ...Array.from({ length: 50 }, (_, n) => 2 * n)].sort((a, b) => a - b));
    assert.deepEqual(journal.get('sandbox', 'sb-1'), { i: 1, last: true });
    assert.ok((await fs.stat(file)).size < 1e6, 'compacted at open');
    await journal.close();
  } finally {
    await fs.rm(path.dirname(file), { recursive: true, force: true });
  }
});

test('the file is compacted while the journal runs once it outgrows the live records', async () => {
  const file = await tmpFile();
  const { journal } = await Journal.open(file, { compactMinBytes: 16 << 10 });
  const value = { pad: 'y'.repeat(1000) };
  let largest = 0;
  for (let i = 0; i < 400; i++) {
    await journal.put('sandbox', `sb-${i % 3}`, { ...value, i });
    largest = Math.max(largest, (await fs.stat(file)).size);
  }
  assert.ok(largest < 24 << 10, `the file reached ${largest} bytes for 3 live records of ~1 KiB (400 KiB appended)`);
  await journal.close();
  const { journal: again } = await Journal.open(file);
  assert.deepEqual(again.all<{ i: number }>('sandbox').map((r) => r.i).sort((a, b) => a - b), [397, 398, 399]);
  await again.close();
});

test('online compaction keeps every acknowledged record under concurrent puts, deletes and compactions (property)', async () => {
  type Op = { op: 'put'; id: number; n: number } | { op: 'delete'; id: number } | { op: 'compact' } | { op: 'await' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('put' as const), id: fc.nat(5), n: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), id: fc.nat(5) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'compact' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'await' as const }) },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(op, { maxLength: 80 }), async (ops) => {
      const file = await tmpFile();
      const { journal } = await Journal.open(file, { compactMinBytes: 512 });
      const model = new Map<string, unknown>();
      let inFlight: Array<Promise<void>> = [];
      for (const o of ops) {
        if (o.op === 'put') {
          inFlight.push(journal.put('sandbox', `sb-${o.id}`, { n: o.n, pad: 'z'.repeat(64) }));
          model.set(`sb-${o.id}`, { n: o.n, pad: 'z'.repeat(64) });
        } else if (o.op === 'delete') {
          inFlight.push(journal.delete('sandbox', `sb-${o.id}`));
          model.delete(`sb-${o.id}`);
        } else if (o.op === 'compact') inFlight.push(journal.compact());
        else {
          await Promise.all(inFlight);
          inFlight = [];
          for (const [id, v] of model) assert.deepEqual(journal.get('sandbox', id), v, 'acknowledged means visible');
        }
      }
      await Promise.all(inFlight);
      await journal.close();
      const { journal: again } = await Journal.open(file);
      const got = new Map(Array.from({ length: 6 }, (_, i) => [`sb-${i}`, again.get('sandbox', `sb-${i}`)] as const).filter(([, v]) => v !== undefined));
      assert.deepEqual(got, model);
      await again.close();
      await fs.rm(path.dirname(file), { recursive: true, force: true });
    }),
    { numRuns: 25 },
  );
});

test('short writes are completed: no torn line is ever acknowledged', async () => {
  const file = await tmpFile();
  let calls = 0;
  const trickle: Partial<JournalIo> = {
    write: async (fh, buf, offset, length) => {
      calls++;
      return (await fh.write(buf, offset, Math.min(length, 7), null)).bytesWritten;
    },
  };
  const { journal } = await Journal.open(file, { io: trickle });
  await Promise.all(Array.from({ length: 20 }, (_, i) => journal.put('job', `j${i}`, { i, text: 'é'.repeat(i) })));
  assert.ok(calls > 20, 'writes go through the io seam');
  const text = await fs.readFile(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  assert.equal(lines(text).length, 20);
  await journal.close();
  const { journal: again, replay } = await Journal.open(file);
  assert.deepEqual(replay, { tornTail: false, badLines: 0, keptAside: null });
  assert.equal(again.all('job').length, 20);
  await again.close();
});

test('a failed write or fsync refuses that change and later ones, keeps memory at what is on disk, then recovers', async () => {
  const file = await tmpFile();
  let failWrites = false;
  let failSyncs = 0;
  const io: Partial<JournalIo> = {
    write: async (fh, buf, offset, length) => {
      if (failWrites) {
        // Half a line reaches the disk, then the device is full.
        if (length > 8) return (await fh.write(buf, offset, Math.floor(length / 2), null)).bytesWritten;
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      }
      return (await fh.write(buf, offset, length, null)).bytesWritten;
    },
    datasync: async (fh) => {
      if (failSyncs > 0) {
        failSyncs--;
        throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      }
      await fh.datasync();
    },
  };
  const { journal } = await Journal.open(file, { io });
  await journal.put('workspace', 'w', { v: 1 });

  failSyncs = 1;
  await assert.rejects(journal.put('workspace', 'w', { v: 2 }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_UNAVAILABLE');
  assert.deepEqual(journal.get('workspace', 'w'), { v: 1 }, 'memory does not run ahead of disk');
  await journal.put('workspace', 'w', { v: 3 }); // recovered: a fresh file from the acknowledged records

  failWrites = true;
  await assert.rejects(journal.put('workspace', 'w', { v: 4 }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_UNAVAILABLE');
  await assert.rejects(journal.put('workspace', 'x', { v: 5 }), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_UNAVAILABLE', 'no append after a failed write until the file is rewritten');
  assert.deepEqual(journal.get('workspace', 'w'), { v: 3 });
  assert.equal(journal.get('workspace', 'x'), undefined);

  failWrites = false;
  await new Promise((r) => setTimeout(r, 1_100)); // the next recovery attempt
  await journal.put('workspace', 'y', { v: 6 });
  await journal.close();
  const { journal: again, replay } = await Journal.open(file);
  assert.deepEqual(replay, { tornTail: false, badLines: 0, keptAside: null }, 'the torn half line was never left behind');
  assert.deepEqual(again.all('workspace'), [{ v: 3 }, { v: 6 }]);
  await again.close();
});

test('a second opener of the same state is refused, even through a symlink, naming the holder', async () => {
  const file = await tmpFile();
  const alias = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-journal-alias-')), 'state.jsonl');
  await fs.symlink(file, alias);
  const { journal } = await Journal.open(file);
  await assert.rejects(Journal.open(alias), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_CONFLICT' && e.message.includes(`pid ${process.pid}`));
  await journal.put('sandbox', 'a', { n: 1 });
  await journal.close();
  const { journal: again } = await Journal.open(alias);
  assert.deepEqual(again.get('sandbox', 'a'), { n: 1 });
  assert.equal(again.file, await fs.realpath(file));
  await again.compact();
  assert.ok((await fs.lstat(alias)).isSymbolicLink(), 'compaction replaces the state file, not the link to it');
  await again.close();
});

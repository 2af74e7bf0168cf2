import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { readCpio, writeCpio, type CpioEntry } from './cpio.js';

const sample: CpioEntry[] = [
  { type: 'dir', path: 'bin' },
  { type: 'dir', path: '/lib/modules/', mode: 0o700 },
  { type: 'file', path: 'bin/busybox', data: Buffer.from('\x7fELF...'), mode: 0o755 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'file', path: 'init', data: Buffer.from('#!/bin/busybox sh\necho hi\n'), mode: 0o755 },
  { type: 'file', path: 'empty', data: new Uint8Array(0) },
];

test('written archive parses back with types, modes and data', () => {
  const got = readCpio(writeCpio(sample));
  assert.deepEqual(got.map((e) => [e.path, e.mode.toString(8)]), [
    ['bin', '40755'],
    ['lib/modules', '40700'],
    ['bin/busybox', '100755'],
    ['bin/sh', '120777'],
    ['init', '100755'],
    ['empty', '100644'],
  ]);
  assert.equal(got[3]!.data.toString(), 'busybox');
  assert.equal(got[4]!.data.toString(), '#!/bin/busybox sh\necho hi\n');
});

test('output is deterministic and 4-byte aligned', () => {
  const a = writeCpio(sample);
  assert.deepEqual(a, writeCpio(sample));
  assert.equal(a.length % 4, 0);
});

test('any file set round-trips', () => {
  const entry = fc.record({ name: fc.stringMatching(/^[a-z0-9_.-]{1,20}$/).filter((s) => s !== '.' && s !== '..'), data: fc.uint8Array({ maxLength: 300 }), mode: fc.integer({ min: 0, max: 0o777 }) });
  fc.assert(
    fc.property(fc.uniqueArray(entry, { selector: (e) => e.name, maxLength: 12 }), (files) => {
      const got = readCpio(writeCpio(files.map((f) => ({ type: 'file', path: `d/${f.name}`, data: f.data, mode: f.mode }))));
      assert.deepEqual(got.map((g) => [g.path, g.mode & 0o777, [...g.data]]), files.map((f) => [`d/${f.name}`, f.mode, [...f.data]]));
    }),
    { numRuns: 200 },
  );
});

test('unsafe paths are refused', () => {
  for (const p of ['', '/', 'a/../b', './x', 'a//b']) assert.throws(() => writeCpio([{ type: 'dir', path: p }]));
});

test('GNU cpio lists the same entries (when installed)', (t) => {
  const r = spawnSync('cpio', ['-t', '--quiet'], { input: writeCpio(sample) });
  if (r.error) return t.skip('cpio not installed');
  assert.equal(r.status, 0, r.stderr.toString());
  assert.deepEqual(r.stdout.toString().trim().split('\n'), ['bin', 'lib/modules', 'bin/busybox', 'bin/sh', 'init', 'empty']);
  const v = spawnSync('cpio', ['-tv', '--quiet'], { input: writeCpio(sample) });
  assert.match(v.stdout.toString(), /lrwxrwxrwx.*bin\/sh -> busybox/);
});

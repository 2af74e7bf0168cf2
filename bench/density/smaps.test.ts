import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifySmaps, kvmEquivalentPssKib, totalPssKib } from './smaps.js';

const block = (head: string, f: Record<string, number>) => `${head}\n${Object.entries(f).map(([k, v]) => `${k}: ${v} kB`).join('\n')}\nVmFlags: rd wr mr mw me ac`;

// Shapes taken from a real QEMU 7.2 child's smaps (values rounded).
const SAMPLE = [
  block('55d1c0a00000-55d1c0e00000 r-xp 00000000 fe:01 1234  /usr/bin/qemu-system-x86_64', { Size: 4096, Rss: 3000, Pss: 150, Private_Dirty: 0, Anonymous: 0 }),
  block('55d1c1000000-55d1c1200000 rw-p 00400000 fe:01 1234  /usr/bin/qemu-system-x86_64', { Size: 2048, Rss: 2200, Pss: 2200, Private_Dirty: 2200, Anonymous: 2200 }),
  block('55d1c2000000-55d1c2800000 rw-p 00000000 00:00 0  [heap]', { Size: 8192, Rss: 5000, Pss: 5000, Private_Dirty: 5000, Anonymous: 5000 }),
  block('7f0000000000-7f0020000000 rw-p 00000000 00:1a 99  /dev/shm/snap/memory.bin', { Size: 524288, Rss: 65000, Pss: 3700, Private_Dirty: 3000, Anonymous: 3000 }),
  block('7f1000000000-7f1040000000 rwxp 00000000 00:00 0 ', { Size: 1048576, Rss: 18000, Pss: 18000, Private_Dirty: 18000, Anonymous: 18000 }),
  block('7f2000000000-7f2000800000 rw-p 00000000 00:00 0 ', { Size: 8192, Rss: 7000, Pss: 7000, Private_Dirty: 7000, Anonymous: 7000 }),
  block('7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0  [stack]', { Size: 132, Rss: 40, Pss: 40, Private_Dirty: 40, Anonymous: 40 }),
  block('7ffd10000000-7ffd10002000 r-xp 00000000 00:00 0  [vdso]', { Size: 8, Rss: 4, Pss: 1, Private_Dirty: 0, Anonymous: 0 }),
].join('\n');

test('classifySmaps puts each mapping in its class and splits guest RAM into shared and copied pages', () => {
  const b = classifySmaps(SAMPLE, 'memory.bin');
  assert.deepEqual(b.guestCow, { pssKib: 3000, privateDirtyKib: 3000 });
  assert.deepEqual(b.guestShared, { pssKib: 700, privateDirtyKib: 0 });
  assert.equal(b.tcgBuffer.pssKib, 18000);
  assert.equal(b.heap.pssKib, 5000);
  assert.equal(b.anon.pssKib, 7040);
  assert.equal(b.libs.pssKib, 2350);
  assert.equal(b.other.pssKib, 1);
  assert.equal(totalPssKib(b), 150 + 2200 + 5000 + 3700 + 18000 + 7000 + 40 + 1);
  assert.equal(kvmEquivalentPssKib(b), totalPssKib(b) - 18000);
});

test('a path that merely contains the memory file name is not guest RAM', () => {
  const b = classifySmaps(block('7f0000000000-7f0000001000 r--p 00000000 fe:01 5  /opt/notmemory.bin', { Pss: 4, Private_Dirty: 0, Anonymous: 0 }), 'memory.bin');
  assert.equal(b.libs.pssKib, 4);
  assert.equal(b.guestShared.pssKib, 0);
});

test('an empty or garbled smaps gives zeros, not a throw', () => {
  assert.equal(totalPssKib(classifySmaps('', 'memory.bin')), 0);
  assert.equal(totalPssKib(classifySmaps('not smaps\nat all', 'memory.bin')), 0);
});

test('KSM-merged copies (anonymous but shared) never make the shared part negative', () => {
  const b = classifySmaps(block('7f0000000000-7f0020000000 rw-p 00000000 00:1a 99  /s/memory.bin', { Pss: 2000, Private_Dirty: 1000, Anonymous: 3000 }), 'memory.bin');
  assert.equal(b.guestCow.pssKib, 2000);
  assert.equal(b.guestShared.pssKib, 0);
  assert.equal(totalPssKib(b), 2000);
});

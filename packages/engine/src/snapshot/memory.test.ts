import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { pageRuns, writeLayer } from './memory.js';
import { PAGE_SIZE } from './manifest.js';

test('page runs list exactly the set bits, in order', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bm) => {
    const pages = bm.length * 8;
    const fromRuns = new Set<number>();
    let last = -1;
    for (const [start, count] of pageRuns(bm, pages)) {
      assert.ok(start > last && count > 0);
      for (let i = start; i < start + count; i++) fromRuns.add(i);
      last = start + count;
    }
    for (let i = 0; i < pages; i++) assert.equal(fromRuns.has(i), (bm[i >> 3]! & (1 << (i & 7))) !== 0);
  }));
});

test('a layer holds exactly the changed pages; applied on the parent it gives back the image', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-layer-'));
  await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 40 }), fc.array(fc.tuple(fc.nat(), fc.constantFrom('zero', 'rand', 'same')), { maxLength: 30 }), async (pages, edits) => {
    const parent = Buffer.alloc(pages * PAGE_SIZE);
    for (let i = 0; i < parent.length; i += 97) parent[i] = (i * 7) & 0xff;
    const full = Buffer.from(parent);
    const changed = new Set<number>();
    for (const [p, kind] of edits) {
      const page = p % pages;
      const slice = full.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      if (kind === 'zero') slice.fill(0);
      else if (kind === 'rand') slice.fill((p % 251) + 1);
      const differs = !slice.equals(parent.subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE));
      if (differs) changed.add(page);
      else changed.delete(page);
    }
    await fs.writeFile(path.join(dir, 'full'), full);
    await fs.writeFile(path.join(dir, 'parent'), parent);
    const { changedPages } = await writeLayer(path.join(dir, 'full'), path.join(dir, 'parent'), path.join(dir, 'layer'), path.join(dir, 'pages'));
    assert.equal(changedPages, changed.size);
    const bitmap = await fs.readFile(path.join(dir, 'pages'));
    const layer = await fs.readFile(path.join(dir, 'layer'));
    const rebuilt = Buffer.from(parent);
    for (const [start, count] of pageRuns(bitmap, pages)) layer.copy(rebuilt, start * PAGE_SIZE, start * PAGE_SIZE, (start + count) * PAGE_SIZE);
    assert.ok(rebuilt.equals(full), 'parent + layer != image');
    await fs.rm(path.join(dir, 'layer'), { force: true });
    await fs.rm(path.join(dir, 'pages'), { force: true });
  }), { numRuns: 60 });
});

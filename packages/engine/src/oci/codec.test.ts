/**
 * compressFile lets zstd read the file itself: a small file can be done before Node has looked at
 * zstd's output. Regression test for a lost (empty) blob under concurrency: many small files at
 * once, each blob a complete zstd stream whose content hashes to the reported file digest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { runTool } from '../qemu/tools.js';
import { compressFile } from './codec.js';

test('many small files compressed at once: every blob is whole and matches its digests', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-codec-'));
  try {
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const data = crypto.randomBytes(1000 + i * 997);
        const src = path.join(dir, `src-${round}-${i}`);
        const dst = path.join(dir, `blob-${round}-${i}`);
        await fs.writeFile(src, data);
        const r = await compressFile(src, dst);
        const blob = await fs.readFile(dst);
        assert.ok(blob.length > 0 && blob.length === r.blob.size, `blob ${round}/${i}: ${blob.length} bytes, reported ${r.blob.size}`);
        assert.equal(`sha256:${crypto.createHash('sha256').update(blob).digest('hex')}`, r.blob.digest);
        assert.equal(r.file.digest, `sha256:${crypto.createHash('sha256').update(data).digest('hex')}`);
        await runTool('zstd', ['-tq', dst]);
      }));
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

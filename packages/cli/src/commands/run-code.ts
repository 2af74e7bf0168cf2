/**
 * `forkd eval --rich` / `--out-dir DIR`: a Python cell through run_code. Logs go to stdout and
 * stderr as the cell wrote them, text results are printed, and each PNG/JPEG result is written to
 * a file whose name is printed (never over an existing file: FORKD_E_CONFLICT).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import type { BodyOf } from '@forkd/api';
import type { Controller, RunCodeResponse } from '@forkd/sdk';
import { printJson } from '../output.js';

export interface WrittenImage {
  result: number;
  format: 'png' | 'jpeg';
  path: string;
  bytes: number;
}

/** Writes each result's images to outDir as <sandbox>-<cell>-<result>.<ext>; returns what it wrote. */
export async function writeImages(r: RunCodeResponse, outDir: string, sandboxId: string): Promise<WrittenImage[]> {
  await fs.mkdir(outDir, { recursive: true });
  const cell = r.execution_count ?? Date.now();
  const written: WrittenImage[] = [];
  for (const [i, res] of r.results.entries()) {
    for (const format of ['png', 'jpeg'] as const) {
      const b64 = res[format];
      if (b64 === undefined) continue;
      const file = path.join(outDir, `${sandboxId}-${cell}-${i}.${format === 'png' ? 'png' : 'jpg'}`);
      const data = Buffer.from(b64, 'base64');
      try {
        await fs.writeFile(file, data, { flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ForkdError('FORKD_E_CONFLICT', `${file} already exists; not overwritten`, { path: file });
        throw e;
      }
      written.push({ result: i, format, path: file, bytes: data.length });
    }
  }
  return written;
}

export async function runCodeCmd(c: Controller, id: string, body: BodyOf<'runCode'>, o: { json?: boolean; outDir?: string }): Promise<number> {
  const r = await c.runCode(id, body);
  const files = o.outDir ? await writeImages(r, o.outDir, id) : [];
  if (o.json) {
    // With --out-dir the images are in files, not repeated as base64.
    printJson(o.outDir ? { ...r, results: r.results.map(({ png: _p, jpeg: _j, ...rest }) => rest), files } : r);
    return r.error ? 1 : 0;
  }
  for (const line of r.logs.stdout) process.stdout.write(line);
  for (const line of r.logs.stderr) process.stderr.write(line);
  for (const [i, res] of r.results.entries()) {
    const mine = files.filter((f) => f.result === i);
    for (const f of mine) process.stdout.write(`${f.format}: ${f.path} (${f.bytes} bytes)\n`);
    if (!mine.length && (res.png || res.jpeg)) process.stdout.write(`(result ${i} has an image; --out-dir DIR writes it)\n`);
    if (res.text !== undefined && (res.is_main_result || !mine.length)) process.stdout.write(`${res.text}\n`);
  }
  for (const d of r.dropped) process.stderr.write(`dropped: ${d}\n`);
  if (r.error) {
    process.stderr.write(r.error.traceback ? `${r.error.traceback}\n` : `${r.error.name}: ${r.error.value}\n`);
    return 1;
  }
  return 0;
}

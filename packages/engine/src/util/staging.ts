import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { type HomeLayout, STAGING_PREFIX } from '../home/paths.js';

/**
 * A staging directory for a snapshot being written, beside its final place (the rename into
 * place is atomic), with owner.json so cleanup can tell an abandoned one from a live writer.
 */
export async function createStaging(layout: HomeLayout, tag: string): Promise<string> {
  await fs.mkdir(layout.snapshots, { recursive: true });
  const staging = path.join(layout.snapshots, `${STAGING_PREFIX}${tag}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(staging);
  await fs.writeFile(path.join(staging, 'owner.json'), JSON.stringify({ pid: process.pid, started: Date.now() }));
  return staging;
}

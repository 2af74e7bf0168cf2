/**
 * Namespaces whose VM is gone: left by a daemon and keeper killed together, or a crash between
 * creating a namespace and recording its VM. A namespace belongs to the VM dir named by its id;
 * run after the run dir's own cleanup, which removes the dirs of dead owners.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runtimeDir, VM_DIR_PREFIX } from '../../runtime/dir.js';
import { deleteNetns, listNetns } from './netns.js';
import { vmIdOfNetns } from './names.js';

export async function sweepStaleNetns(opts: { dryRun?: boolean; runDir?: string } = {}): Promise<string[]> {
  const run = path.resolve(opts.runDir ?? runtimeDir());
  const removed: string[] = [];
  for (const name of await listNetns()) {
    const id = vmIdOfNetns(name, run);
    if (!id) continue;
    const alive = await fs.access(path.join(run, `${VM_DIR_PREFIX}${id}`)).then(() => true, () => false);
    if (alive) continue;
    removed.push(`netns:${name}`);
    if (!opts.dryRun) await deleteNetns(name).catch(() => undefined);
  }
  return removed;
}

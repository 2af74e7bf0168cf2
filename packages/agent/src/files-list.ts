/** Breadth-first directory listing to a depth, capped in entries; symlinks are not followed. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { EntryInfoT } from '@forkd/protocol';
import { entryInfo } from './fs-util.js';

export async function listTree(root: string, depth: number, cap: number): Promise<{ entries: EntryInfoT[]; truncated: boolean }> {
  const entries: EntryInfoT[] = [];
  let level = [root];
  for (let d = 0; d < depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const dir of level) {
      let names: string[];
      try {
        names = (await fs.readdir(dir)).sort();
      } catch (err) {
        if (dir === root) throw err;
        continue; // vanished or unreadable below the root: skip it
      }
      for (const name of names) {
        if (entries.length >= cap) return { entries, truncated: true };
        const p = path.join(dir, name);
        let info: EntryInfoT;
        try {
          info = await entryInfo(p);
        } catch {
          continue;
        }
        entries.push(info);
        if (info.type === 'dir') next.push(p);
      }
    }
    level = next;
  }
  return { entries, truncated: false };
}

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/fsx.js';

export interface CachedVerdict {
  accel: 'kvm' | 'tcg';
  reason: string;
  bootMs?: number;
  at: string;
}

type CacheFile = Record<string, CachedVerdict>;

async function readAll(file: string): Promise<CacheFile> {
  try {
    const v = JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as CacheFile) : {};
  } catch {
    return {};
  }
}

export async function readVerdict(file: string, key: string): Promise<CachedVerdict | null> {
  const v = (await readAll(file))[key];
  return v && (v.accel === 'kvm' || v.accel === 'tcg') && typeof v.reason === 'string' ? v : null;
}

/** Adds one verdict (read-modify-write, written atomically; a lost race only costs a re-probe). */
export async function writeVerdict(file: string, key: string, verdict: CachedVerdict): Promise<void> {
  const all = await readAll(file);
  all[key] = verdict;
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(all, null, 2)}\n`);
}

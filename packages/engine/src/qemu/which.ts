import { promises as fs, constants as fsc } from 'node:fs';
import path from 'node:path';

/** The absolute path of an executable on PATH (or the path itself if it contains '/'), else null. */
export async function which(name: string, envPath = process.env.PATH ?? ''): Promise<string | null> {
  const candidates = name.includes('/') ? [name] : envPath.split(':').filter(Boolean).map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      const st = await fs.stat(c);
      if (!st.isFile()) continue;
      await fs.access(c, fsc.X_OK);
      return path.resolve(c);
    } catch {
      // next
    }
  }
  return null;
}

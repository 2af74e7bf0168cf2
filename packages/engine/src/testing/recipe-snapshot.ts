/**
 * A snapshot of any recipe for tests and benchmarks, kept across runs while it is still the one
 * this code would make (same image, same machine layout, same recipe), re-created otherwise.
 */
import crypto from 'node:crypto';
import type { Engine } from '../engine.js';
import type { Recipe } from '../recipe/recipe.js';
import { imageKey } from '../image/build.js';
import { machineSignature } from '../snapshot/machine.js';

const recipeHash = (r: Recipe) => crypto.createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 12);

/** The tag a recipe's cached snapshot goes by: its name and a hash of its whole content. */
export function recipeSnapshotTag(prefix: string, recipe: Recipe): string {
  return `${prefix}-${recipeHash(recipe)}`;
}

export async function ensureRecipeSnapshot(engine: Engine, prefix: string, recipe: Recipe, log: (m: string) => void = (m) => process.stderr.write(`# ${m}\n`)): Promise<{ tag: string; created: boolean }> {
  const tag = recipeSnapshotTag(prefix, recipe);
  const { key } = await imageKey(recipe);
  const s = await engine.getSnapshot(tag).catch(() => null);
  const m = s?.manifest;
  if (m && m.image.key === key && m.machine.signature === machineSignature(m.accel, m.machine.mem_mib, m.machine.vcpus)) return { tag, created: false };
  await engine.removeSnapshot(tag, { cascade: true }).catch(() => undefined);
  let last = '';
  await engine.createSnapshot({
    tag,
    recipe,
    onProgress: (ev) => {
      if (ev.phase !== 'debootstrap' || ev.phase !== last) log(`[${ev.phase}] ${ev.message}`);
      last = ev.phase;
    },
  });
  return { tag, created: true };
}

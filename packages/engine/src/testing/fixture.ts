/**
 * Shared by integration tests: one warm python snapshot per agent/image version, reused across
 * test files and runs (it is rebuilt when the image it was made from changes).
 */
import { ForkdError } from '@forkd/protocol';
import { Engine } from '../engine.js';
import { loadRecipe, parseRecipe, type Recipe } from '../recipe/recipe.js';
import { imageKey } from '../image/build.js';
import { machineSignature } from '../snapshot/machine.js';
import { guestCmdline } from '../vm/boot.js';

/** A sandbox's VM and agent connection, for tests and probes that look inside it (never for the daemon). */
export { vmOf, agentOf } from '../sandbox/sandbox.js';
/** A loopback OCI registry (Debian's docker-registry) for OCI tests and bench:hub. */
export { startRegistry, type TestRegistry } from './registry.js';
export { RegistryClient } from '../oci/registry.js';
export { sha256Digest } from '../oci/digest.js';
/** Cached snapshots of any recipe (tests and benchmarks). */
export { ensureRecipeSnapshot, recipeSnapshotTag } from './recipe-snapshot.js';

export const PARENT_MARKER = 424242;
export const FIXTURE_TAG = 'itest-python';

export async function fixtureRecipe(): Promise<Recipe> {
  const base = await loadRecipe('python');
  return parseRecipe(JSON.stringify({
    ...base,
    name: 'itest-python',
    warmup: {
      ...base.warmup,
      python: `${base.warmup.python ?? ''}\nforkd_parent_marker = ${PARENT_MARKER}`,
      js: "var jsParentMarker = 'from-parent';",
    },
  }));
}

export function testEngine(): Engine {
  return new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
}

/** Returns the fixture snapshot tag, creating (or re-creating) it when needed. */
export async function ensureFixtureSnapshot(engine: Engine): Promise<string> {
  const recipe = await fixtureRecipe();
  const { key } = await imageKey(recipe);
  try {
    const s = await engine.getSnapshot(FIXTURE_TAG);
    const m = s.manifest;
    // Same image, and the machine layout this forkd boots (a device or initramfs change makes it
    // unrestorable), and the guest kernel line it boots (a snapshot keeps the one it booted with:
    // tests must run the current one, e.g. its timer and clock settings).
    if (m.image.key === key && m.qemu.version && m.machine.signature === machineSignature(m.accel, m.machine.mem_mib, m.machine.vcpus) && m.kernel.cmdline === (await guestCmdline(m.accel))) return FIXTURE_TAG;
  } catch {
    // missing or unreadable: (re)create it below
  }
  // A stale fixture goes with the layers tests built on it (they are useless without it).
  await engine.removeSnapshot(FIXTURE_TAG, { cascade: true }).catch(() => undefined);
  const log = (ev: { phase: string; message: string }) => process.stderr.write(`# fixture [${ev.phase}] ${ev.message}\n`);
  let lastPhase = '';
  try {
    await engine.createSnapshot({
      tag: FIXTURE_TAG,
      recipe,
      onProgress: (ev) => {
        if (ev.phase !== 'debootstrap' || ev.phase !== lastPhase) log(ev);
        lastPhase = ev.phase;
      },
    });
  } catch (e) {
    // Another test process made it at the same time: use theirs if it is the right one.
    const theirs = await engine.getSnapshot(FIXTURE_TAG).catch(() => null);
    if (!(e instanceof ForkdError && e.code === 'FORKD_E_SNAPSHOT_EXISTS') || theirs?.manifest.image.key !== key) throw e;
  }
  return FIXTURE_TAG;
}

/** Whether a process with this pid exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls cond until it holds or ms pass; returns its last value. */
export async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && !cond()) await new Promise((r) => setTimeout(r, 50));
  return cond();
}
export { openNetLab, sh, type NetLab } from './net-lab.js';
export { netnsPrefix } from '../network/netns/names.js';

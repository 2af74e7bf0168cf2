/**
 * Test helper process: spawns children from a snapshot, prints their pids and dirs, then idles.
 *   hold-children.ts TAG N [KEEPER_KEY GRACE_MS]   (with a key, VMs are launched through a keeper)
 */
import { testEngine } from './fixture.js';

const [tag, n, keeperKey, graceMs] = process.argv.slice(2);
const engine = testEngine();
if (keeperKey) await engine.attachKeeper({ key: keeperKey, graceMs: Number(graceMs ?? '5000') });
const sbs = await engine.spawn({ tag: tag!, n: Number(n ?? '1') });
if (keeperKey) {
  // State that must survive the owner's death: an interpreter variable in each child.
  await Promise.all(sbs.map((s, i) => s.eval('python', `held_marker = ${i} + 1000`)));
}
process.stdout.write(`${JSON.stringify({ pids: sbs.map((s) => s.pid), dirs: sbs.map((s) => s.dir), ids: sbs.map((s) => s.id), timings: sbs.map((s) => s.timings) })}\n`);
setInterval(() => undefined, 1 << 30);

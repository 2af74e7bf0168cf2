/** Test helper process: spawns children from a snapshot, prints their pids and dirs, then idles. */
import { testEngine } from './fixture.js';

const [tag, n] = process.argv.slice(2);
const engine = testEngine();
const sbs = await engine.spawn({ tag: tag!, n: Number(n ?? '1') });
process.stdout.write(`${JSON.stringify({ pids: sbs.map((s) => s.pid), dirs: sbs.map((s) => s.vm.dir) })}\n`);
setInterval(() => undefined, 1 << 30);

import { type Engine } from '@forkd/engine';
import { ForkdError } from '@forkd/protocol';
import { printForkReport, runFork } from './fork.js';
import { snapshotCreate } from './snapshots.js';

export const QUICKSTART_TAG = 'quickstart-python';
const QUICKSTART_CODE = [
  'import os, random',
  "f'numpy {np.__version__} | sum={int(np.arange(1_000).sum())} | rand={random.random():.6f} | urandom={os.urandom(4).hex()}'",
].join('\n');

/** Builds the default image and snapshot if missing, forks 10 children and evaluates in each. */
export async function quickstart(engine: Engine, o: { n: number; json?: boolean }): Promise<void> {
  let exists = true;
  try {
    await engine.getSnapshot(QUICKSTART_TAG);
  } catch (e) {
    if (!(e instanceof ForkdError) || e.code !== 'FORKD_E_SNAPSHOT_NOT_FOUND') throw e;
    exists = false;
  }
  if (!exists) {
    if (!o.json) process.stderr.write(`creating snapshot ${QUICKSTART_TAG} from recipe python (first run only: image build + boot + warm-up)\n`);
    await snapshotCreate(engine, { tag: QUICKSTART_TAG, recipe: 'python', json: false });
  }
  if (!o.json) process.stderr.write(`forking ${o.n} children from ${QUICKSTART_TAG} and evaluating Python in each\n`);
  const report = await runFork(engine, { tag: QUICKSTART_TAG, n: o.n, eval: QUICKSTART_CODE, lang: 'python', json: o.json ?? false });
  printForkReport(report, o.json ?? false);
  if (report.children.some((c) => !c.ok)) throw new ForkdError('FORKD_E_AGENT_ERROR', 'some children failed their eval');
}

import { type Engine } from '@forkd/engine';
import { ForkdError } from '@forkd/protocol';
import type { Controller } from '@forkd/sdk';
import { printForkReport, runFork, runForkLocal, type ForkOptions, type ForkReport } from './fork.js';
import { snapshotCreate, snapshotCreateLocal } from './snapshots.js';

export const QUICKSTART_TAG = 'quickstart-python';
const QUICKSTART_CODE = [
  'import os, random',
  "f'numpy {np.__version__} | sum={int(np.arange(1_000).sum())} | rand={random.random():.6f} | urandom={os.urandom(4).hex()}'",
].join('\n');

/** The two roads quickstart can take: the daemon (default) or the engine in this process (--local). */
export type QuickstartRoad =
  | { controller: Controller }
  | { engine: Engine };

async function exists(getSnapshot: () => Promise<unknown>): Promise<boolean> {
  try {
    await getSnapshot();
    return true;
  } catch (e) {
    if (e instanceof ForkdError && (e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND' || e.code === 'FORKD_E_NOT_FOUND')) return false;
    throw e;
  }
}

/** Builds the default image and snapshot if missing, forks n children and evaluates in each. */
export async function quickstart(road: QuickstartRoad, o: { n: number; json?: boolean }): Promise<void> {
  const create = { tag: QUICKSTART_TAG, recipe: 'python' };
  const found = 'controller' in road ? await exists(() => road.controller.getSnapshot(QUICKSTART_TAG)) : await exists(() => road.engine.getSnapshot(QUICKSTART_TAG));
  if (!found) {
    if (!o.json) process.stderr.write(`creating snapshot ${QUICKSTART_TAG} from recipe python (first run only: image build + boot + warm-up)\n`);
    if ('controller' in road) await snapshotCreate(road.controller, create);
    else await snapshotCreateLocal(road.engine, create);
  }
  if (!o.json) process.stderr.write(`forking ${o.n} children from ${QUICKSTART_TAG} and evaluating Python in each\n`);
  const fork: ForkOptions = { tag: QUICKSTART_TAG, n: o.n, eval: QUICKSTART_CODE, lang: 'python', json: o.json ?? false };
  const report: ForkReport = 'controller' in road ? await runFork(road.controller, fork) : await runForkLocal(road.engine, fork);
  printForkReport(report, o.json ?? false);
  if (report.children.some((c) => !c.ok)) throw new ForkdError('FORKD_E_AGENT_ERROR', 'some children failed their eval');
}

/** `forkd demo …`: end-to-end demonstrations that run against the daemon. */
import type { Command } from 'commander';
import { ForkdError } from '@forkd/protocol';
import type { CliContext } from '../client.js';
import { parseIntStrict } from '../output.js';
import { TREE_DEMO_TEMPERATURES, printTreeDemo, runTreeDemo } from './demo-tree.js';

function temperatures(v: string): number[] {
  const t = v.split(',').map((s) => s.trim());
  if (t.length < 2 || t.length > 20 || t.some((s) => !/^\d+(\.\d+)?$/.test(s) || Number(s) > 100)) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--temperatures takes 2 to 20 comma-separated numbers from 0 to 100; got ${JSON.stringify(v)}`);
  }
  return t.map(Number);
}

export function registerDemoCommands(program: Command, { run, client }: CliContext): void {
  const demo = program.command('demo').description('end-to-end demonstrations (offline)');
  demo.command('tree-search')
    .description('an agent forks at a decision point into branches with different temperatures; the best continuation is kept, the rest killed')
    .option('--temperatures <list>', 'one branch per temperature', TREE_DEMO_TEMPERATURES.join(','))
    .option('--prefix <n>', 'greedy decisions before the fork', '4')
    .option('--depth <n>', 'levels of forking (beam search)', '1')
    .option('--width <n>', 'branches kept per level', '1')
    .option('--steps <n>', 'decisions per level before the last', '3')
    .option('--keep', 'leave the winner running')
    .option('--json', 'JSON output')
    .action(run(async (o: { temperatures: string; prefix: string; depth: string; width: string; steps: string; keep?: boolean; json?: boolean }) => {
      const r = await runTreeDemo(await client(), {
        temperatures: temperatures(o.temperatures),
        prefixSteps: parseIntStrict('--prefix', o.prefix),
        depth: parseIntStrict('--depth', o.depth),
        width: parseIntStrict('--width', o.width),
        stepsPerLevel: parseIntStrict('--steps', o.steps),
        ...(o.keep ? { keep: true } : {}),
        ...(o.json ? { json: true } : {}),
      });
      printTreeDemo(r, o.json ?? false);
    }));
}

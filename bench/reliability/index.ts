/**
 * npm run bench:reliability: the reliability figures of issue 9 §4 (R1-R6), each scenario against
 * a real daemon (and real VMs for R1-R5), each printed with the command that made it.
 *
 *   npm run bench:reliability                      all scenarios, full size
 *   npm run bench:reliability -- --only R1,R3      some
 *   npm run bench:reliability -- --quick           a short smoke of each
 *   --cycles N (R1, default 1000)   --requests N (R3, default 10000)
 *
 * Each scenario runs in its own process; those that boot VMs take the shared VM lock
 * (flock $FORKD_VM_LOCK, default /tmp/forkd-vm.lock) for their duration only; set
 * FORKD_BENCH_NO_LOCK=1 when the caller already holds it. The whole output is also written to
 * bench/results/reliability-<time>.out.
 */
import { spawn, execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { machineLine, type Scenario, type ScenarioOptions } from './common.js';
import { r1 } from './r1-churn.js';
import { r2 } from './r2-crash.js';
import { r3 } from './r3-fuzz.js';
import { r4 } from './r4-hostile-guest.js';
import { r5 } from './r5-clients.js';
import { r6 } from './r6-journal.js';

const SCENARIOS: Scenario[] = [r1, r2, r3, r4, r5, r6];
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv: string[]): { only: string[]; scenario: string | null; o: ScenarioOptions } {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const known = new Set(['--only', '--scenario', '--cycles', '--requests', '--quick']);
  for (const [i, a] of argv.entries()) {
    if (a.startsWith('--') && !known.has(a)) throw new Error(`unknown flag ${a} (known: ${[...known].join(', ')})`);
    if (['--only', '--scenario', '--cycles', '--requests'].includes(a) && argv[i + 1] === undefined) throw new Error(`${a} needs a value`);
  }
  const quick = argv.includes('--quick');
  const num = (flag: string, dflt: number) => {
    const v = value(flag);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${v}`);
    return n;
  };
  const only = (value('--only') ?? SCENARIOS.map((s) => s.id).join(',')).split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const id of only) if (!SCENARIOS.some((s) => s.id === id)) throw new Error(`unknown scenario ${id} (known: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  return { only, scenario: value('--scenario') ?? null, o: { quick, cycles: num('--cycles', quick ? 20 : 1000), requests: num('--requests', quick ? 500 : 10_000) } };
}

/** The flags that reproduce a scenario's figures. */
function commandFor(s: Scenario, o: ScenarioOptions): string {
  const flags = [`--only ${s.id}`, ...(o.quick ? ['--quick'] : []), ...(s.id === 'R1' ? [`--cycles ${o.cycles}`] : []), ...(s.id === 'R3' ? [`--requests ${o.requests}`] : [])];
  return `npm run bench:reliability -- ${flags.join(' ')}`;
}

async function runOne(id: string, o: ScenarioOptions): Promise<void> {
  const s = SCENARIOS.find((x) => x.id === id)!;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  if (s.vm) {
    const { testEngine } = await import('@forkd/engine/testing');
    const env = await testEngine().platform.resolve();
    out(`acceleration: ${env.accel}, QEMU ${env.qemuVersion}`);
  }
  await s.run(o, out);
}

async function runAll(only: string[], o: ScenarioOptions): Promise<void> {
  const lines: string[] = [];
  const out = (line: string) => {
    lines.push(line);
    process.stdout.write(`${line}\n`);
  };
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    /* not a git tree */
  }
  // A run directory of our own, so what the scenarios count is theirs (the default one is shared).
  const runDir = process.env.FORKD_RUN_DIR ?? path.join(os.tmpdir(), `forkd-rel-${process.pid}`);
  out(`# forkd reliability (issue 9 §4), ${new Date().toISOString()}, commit ${commit}`);
  out(`# ${machineLine()}; FORKD_HOME=${process.env.FORKD_HOME ?? '(default)'}`);
  let failed = 0;
  for (const id of only) {
    const s = SCENARIOS.find((x) => x.id === id)!;
    out('');
    out(`## ${s.id}: ${s.title}`);
    out(`command: ${commandFor(s, o)}`);
    out(`machine at start: ${machineLine()}`);
    const t0 = Date.now();
    const self = [process.execPath, '--conditions=source', '--import', 'tsx', fileURLToPath(import.meta.url), '--scenario', s.id, ...(o.quick ? ['--quick'] : []), '--cycles', String(o.cycles), '--requests', String(o.requests)];
    const locked = s.vm && !process.env.FORKD_BENCH_NO_LOCK;
    const argv = locked ? ['flock', process.env.FORKD_VM_LOCK ?? '/tmp/forkd-vm.lock', ...self] : self;
    const code = await new Promise<number>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORKD_RUN_DIR: runDir } });
      let buf = '';
      child.stdout.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          out(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      child.on('close', (c) => {
        if (buf) out(buf);
        resolve(c ?? 1);
      });
    });
    if (code !== 0) failed++;
    out(`(${s.id} ${code === 0 ? 'finished' : `FAILED with exit status ${code}`} in ${((Date.now() - t0) / 1000).toFixed(0)} s${locked ? ', VM lock wait included' : ''}; load average after: ${os.loadavg()[0]!.toFixed(2)})`);
  }
  await fs.rm(runDir, { recursive: true, force: true }).catch(() => undefined);
  const file = path.join(here, '..', 'results', `reliability-${new Date().toISOString().replace(/[:.]/g, '-')}${o.quick ? '-quick' : ''}.out`);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, `${lines.join('\n')}\n`);
  process.stderr.write(`# written to ${path.relative(process.cwd(), file)}\n`);
  if (failed) process.exitCode = 1;
}

const { only, scenario, o } = parseArgs(process.argv.slice(2));
if (scenario) await runOne(scenario, o);
else await runAll(only, o);

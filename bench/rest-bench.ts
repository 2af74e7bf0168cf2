/**
 * Issue-3 benchmark: the daemon's REST API against the engine directly, in the same run.
 *   - spawn of N=20 through REST (request -> 201 with all ready) vs engine.spawn (all ready)
 *   - exec (`true`, argv) and eval (`1 + 1`) round trips through REST, p50/p99, vs the agent directly
 *   - 100 concurrent exec calls on 10 sandboxes: errors and latency
 * The daemon is a separate process on a Unix socket (how the CLI and SDKs reach it).
 * Usage: npm run bench:rest   (ROUNDS=3 N=20 CALLS=100)
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, summarize, nowMs, since } from '@forkd/engine';
import { Controller } from '@forkd/sdk';
import { startTestDaemon } from '@forkd/daemon/testing';
import { speedProbeMs } from './speed-probe.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const N = Number(process.env.N ?? 20);
const CALLS = Number(process.env.CALLS ?? 100);
const log = (s: string) => process.stderr.write(`${s}\n`);

const d = await startTestDaemon({ keeperGraceSecs: 5 });
const c = new Controller({ socketPath: d.socketPath });
const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
const env = await engine.platform.resolve();

interface Round {
  restSpawnMs: number;
  engineSpawnMs: number;
  restExecMs: number[];
  restEvalMs: number[];
  directExecMs: number[];
  directEvalMs: number[];
  concurrentMs: number;
  concurrentCallMs: number[];
  concurrentErrors: number;
  /** What went wrong, by error code (or "wrong output"). */
  concurrentErrorKinds: Record<string, number>;
}

async function round(i: number): Promise<Round> {
  // Alternate the order so neither path always runs on a warmer host.
  let restSpawnMs = 0;
  let engineSpawnMs = 0;
  const viaRest = async () => {
    const t = nowMs();
    const list = await c.spawnSandboxes({ snapshot_tag: d.tag, n: N });
    restSpawnMs = since(t);
    return list;
  };
  const viaEngine = async () => {
    const t = nowMs();
    const sbs = await engine.spawn({ tag: d.tag, n: N });
    engineSpawnMs = since(t);
    await Promise.all(sbs.map((s) => s.kill()));
  };
  log(`round ${i + 1}/${ROUNDS}: spawn ${N} via REST and via the engine`);
  let list;
  if (i % 2 === 0) {
    await viaEngine();
    list = await viaRest();
  } else {
    list = await viaRest();
    await Promise.all(list.map((s) => c.killSandbox(s.id)));
    await viaEngine();
    list = await c.spawnSandboxes({ snapshot_tag: d.tag, n: N });
  }
  try {
    await new Promise((r) => setTimeout(r, 2000)); // settle
    const ten = list.slice(0, 10);
    const one = ten[0]!;
    log('  sequential round trips');
    const restExecMs: number[] = [];
    const restEvalMs: number[] = [];
    for (let k = 0; k < 5; k++) {
      await c.exec(one.id, { args: ['true'] });
      await c.eval(one.id, { code: '1 + 1' });
    }
    for (let k = 0; k < 50; k++) {
      let t = nowMs();
      await c.exec(one.id, { args: ['true'] });
      restExecMs.push(since(t));
      t = nowMs();
      await c.eval(one.id, { code: '1 + 1' });
      restEvalMs.push(since(t));
    }
    // The same calls straight to a child's agent (no daemon, no HTTP), on a child the engine owns.
    const [direct] = await engine.spawn({ tag: d.tag, n: 1 });
    const directExecMs: number[] = [];
    const directEvalMs: number[] = [];
    try {
      for (let k = 0; k < 5; k++) {
        await direct!.commands.exec({ argv: ['true'] });
        await direct!.eval('python', '1 + 1');
      }
      for (let k = 0; k < 50; k++) {
        let t = nowMs();
        await direct!.commands.exec({ argv: ['true'] });
        directExecMs.push(since(t));
        t = nowMs();
        await direct!.eval('python', '1 + 1');
        directEvalMs.push(since(t));
      }
    } finally {
      await direct!.kill();
    }
    log(`  ${CALLS} concurrent exec calls on ${ten.length} sandboxes`);
    const concurrentCallMs: number[] = [];
    let concurrentErrors = 0;
    const concurrentErrorKinds: Record<string, number> = {};
    const failed = (kind: string) => {
      concurrentErrors++;
      concurrentErrorKinds[kind] = (concurrentErrorKinds[kind] ?? 0) + 1;
    };
    const t0 = nowMs();
    await Promise.all(Array.from({ length: CALLS }, async (_, k) => {
      const t = nowMs();
      try {
        const r = await c.exec(ten[k % ten.length]!.id, { cmd: `echo ${k}` });
        if (r.stdout.trim() !== String(k)) failed(`wrong output (exit ${r.exit_code}${r.error ? `, ${r.error}` : ''})`);
      } catch (e) {
        failed(`${(e as { code?: string }).code ?? 'error'}: ${(e as Error).message}`);
      }
      concurrentCallMs.push(since(t));
    }));
    return { restSpawnMs, engineSpawnMs, restExecMs, restEvalMs, directExecMs, directEvalMs, concurrentMs: since(t0), concurrentCallMs, concurrentErrors, concurrentErrorKinds };
  } finally {
    await Promise.all(list.map((s) => c.killSandbox(s.id).catch(() => undefined)));
  }
}

const speedBefore = speedProbeMs();
const rounds: Round[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) rounds.push(await round(i));
} finally {
  await d.stop();
}
const speedAfter = speedProbeMs();
const per = (f: (r: Round) => number) => summarize(rounds.map(f));
const fmt = (s: { min: number; median: number; max: number }, unit = 'ms', dgt = 0) => `${s.min.toFixed(dgt)} / ${s.median.toFixed(dgt)} / ${s.max.toFixed(dgt)} ${unit}`;
const ratio = summarize(rounds.map((r) => r.restSpawnMs / r.engineSpawnMs));
const cpu = os.cpus()[0]?.model ?? 'unknown';
const lines = [
  `machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; accel ${env.accel}; QEMU ${env.qemuVersion}`,
  `command: ROUNDS=${ROUNDS} N=${N} CALLS=${CALLS} npm run bench:rest   (snapshot ${d.tag}; daemon on a Unix socket); min / median / max over ${ROUNDS} rounds`,
  `machine speed probe (fixed host work; lower is faster): ${speedBefore} ms before, ${speedAfter} ms after`,
  '',
  '| figure | min / median / max | target |',
  '|---|---|---|',
  `| spawn ${N} through REST (request → all ready) | ${fmt(per((r) => r.restSpawnMs))} | |`,
  `| spawn ${N} with the engine directly | ${fmt(per((r) => r.engineSpawnMs))} | |`,
  `| REST / engine | ${fmt(ratio, 'x', 2)} | ≤ 1.10x |`,
  `| exec \`true\` through REST, p50 | ${fmt(per((r) => summarize(r.restExecMs).median), 'ms', 1)} | ≤ 15 ms |`,
  `| exec \`true\` through REST, p99 | ${fmt(per((r) => summarize(r.restExecMs).p99), 'ms', 1)} | |`,
  `| eval \`1 + 1\` through REST, p50 | ${fmt(per((r) => summarize(r.restEvalMs).median), 'ms', 1)} | ≤ 15 ms |`,
  `| eval \`1 + 1\` through REST, p99 | ${fmt(per((r) => summarize(r.restEvalMs).p99), 'ms', 1)} | |`,
  `| exec \`true\` straight to the agent, p50 | ${fmt(per((r) => summarize(r.directExecMs).median), 'ms', 1)} | |`,
  `| eval \`1 + 1\` straight to the agent, p50 | ${fmt(per((r) => summarize(r.directEvalMs).median), 'ms', 1)} | |`,
  `| ${CALLS} concurrent execs on ${Math.min(10, N)} sandboxes: wall time | ${fmt(per((r) => r.concurrentMs))} | |`,
  `| … per call p50 / p99 (median round) | ${summarize(rounds.map((r) => summarize(r.concurrentCallMs).median)).median.toFixed(0)} / ${summarize(rounds.map((r) => summarize(r.concurrentCallMs).p99)).median.toFixed(0)} ms | |`,
  `| … errors | ${rounds.map((r) => r.concurrentErrors).join(', ')} | 0 |`,
];
const kinds = rounds.flatMap((r, i) => Object.entries(r.concurrentErrorKinds).map(([k, n]) => `round ${i + 1}: ${n} × ${k}`));
if (kinds.length > 0) lines.push('', 'concurrent exec errors:', ...kinds.map((k) => `- ${k}`));
process.stdout.write(`${lines.join('\n')}\n`);
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
await fs.mkdir(outDir, { recursive: true });
await fs.writeFile(path.join(outDir, `rest-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu, accel: env.accel, qemu: env.qemuVersion, speedProbeMs: [speedBefore, speedAfter] }, ROUNDS, N, CALLS, rounds }, null, 2));

/**
 * Issue-10 §5 benchmark: fork from inside the guest against fork from outside through REST, same run.
 *   - fork(5) of a running Python loop: from inside (the loop calls forkd.fork(5)), the time from the
 *     call to all 5 children continuing (guest wall clocks: the parent's just before the call, each
 *     child's when the call returns in it; a restored child's clock is set from the host's first),
 *     and the source's pause; from outside (POST /v1/sandboxes/:id/fork with vary while the loop
 *     runs; the default live capture and a full one, as a guest fork makes), the time from the request
 *     to its answer (all 5 children answering with their values).
 *   - a beam search of DEPTH=3 levels, width 4, K temperatures per expansion: from inside (the guest
 *     agent forks itself at each level; the host reads the scores, kills the losers and tells the kept
 *     to go on) against the SDK's treeSearch (fork with vary, run and score by eval, through REST).
 * The daemon is a separate process on a Unix socket. Guest forks make their own captures: removed
 * after each round. Figures: bench/README.md.
 * Usage: npm run bench:tree   (ROUNDS=3 K=4 WIDTH=4 DEPTH=3 FORK_N=5)
 */
import { Controller, sandboxOf, treeSearch } from '@forkd/sdk';
import { startTestDaemon } from '@forkd/daemon/testing';
import { Engine, summarize, nowMs, since } from '@forkd/engine';
import { hostLine, loadAverage } from '../host.js';
import { BEAM_PY, LOOP_PY, STEP_PY } from './programs.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const FORK_N = Number(process.env.FORK_N ?? 5);
const K = Number(process.env.K ?? 4);
const WIDTH = Number(process.env.WIDTH ?? 4);
const DEPTH = Number(process.env.DEPTH ?? 3);
/** How long the host waits for one guest fork to report (a stalled fork fails the search instead of hanging). */
const FORK_WAIT_SECS = Number(process.env.FORK_WAIT_SECS ?? 300);
const SKIP = new Set((process.env.SKIP ?? '').split(',').filter(Boolean)); // fork, beam
const TEMPS = Array.from({ length: K }, (_, i) => Number((0.2 + (1.0 * i) / Math.max(1, K - 1)).toFixed(2)));
const log = (s: string) => process.stderr.write(`${s}\n`);
const fmt = (s: { min: number; median: number; max: number }, unit = 'ms') => `${s.min.toFixed(0)} / ${s.median.toFixed(0)} / ${s.max.toFixed(0)} ${unit}`;

const platform = await new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' }).platform.resolve();
const d = await startTestDaemon({ keeperGraceSecs: 5 });
const c = new Controller({ socketPath: d.socketPath });
const loads: string[] = [loadAverage()];

/** Waits in the guest (one exec, no host polling) until the file exists, and returns it parsed. */
async function waitFile<T>(id: string, name: string, timeoutSecs = 600): Promise<T> {
  const r = await c.exec(id, { args: ['sh', '-c', `while [ ! -e /root/bt/${name} ]; do sleep 0.01; done; cat /root/bt/${name}`], timeout_secs: timeoutSecs });
  if (r.exit_code !== 0) throw new Error(`${id}: waiting for ${name}: exit ${r.exit_code} ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
async function put(id: string, name: string): Promise<void> {
  await c.writeFile(id, `/root/bt/${name}`, '{}');
}
async function startProgram(id: string, file: string, source: string, args: string[]): Promise<void> {
  await c.writeFile(id, file, source);
  await c.startProcess(id, { args: ['python3', file, ...args] });
  await waitFile(id, 'ready');
}
async function spawnSource(guestFork: { max_count: number; max_depth: number } | null): Promise<string> {
  const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, ...(guestFork ? { allow_guest_fork: guestFork } : {}) });
  return s!.id;
}
const killAll = (ids: Iterable<string>) => Promise.all([...ids].map((id) => c.killSandbox(id).catch(() => undefined)));
/** Deletes the captures made from these sandboxes (guest forks and REST forks alike). */
async function dropCaptures(ids: Set<string>): Promise<void> {
  const snaps = await c.listSnapshots();
  const mine = snaps.filter((s) => s.branched_from && ids.has(s.branched_from.replace(/^sandbox:/, '')));
  // Deepest first: a capture of a child is a layer on its parent's capture.
  for (const s of mine.reverse()) await c.deleteSnapshot(s.tag, { cascade: true, force: true }).catch(() => undefined);
}

interface ForkSample { callToContinueMs: number; pauseMs: number; forkMs: number; /** Children whose loop was seen running (outside; inside each child reports itself). */ loopRunning?: number }

async function forkInside(): Promise<ForkSample> {
  const src = await spawnSource({ max_count: FORK_N, max_depth: 1 });
  const made = new Set([src]);
  try {
    await startProgram(src, '/root/loop.py', LOOP_PY, ['inside', String(FORK_N)]);
    await put(src, 'go');
    const parent = await waitFile<{ t_call: number; children: string[]; pause_ms: number; fork_ms: number }>(src, 'parent');
    for (const id of parent.children) made.add(id);
    const kids = await Promise.all(parent.children.map((id) => waitFile<{ t_call: number; t_back: number; index: number }>(id, 'child')));
    if (kids.length !== FORK_N || new Set(kids.map((k) => k.index)).size !== FORK_N) throw new Error(`children ${JSON.stringify(kids)}`);
    for (const k of kids) if (k.t_call !== parent.t_call) throw new Error('a child did not continue from the parent\'s call');
    return { callToContinueMs: (Math.max(...kids.map((k) => k.t_back)) - parent.t_call) * 1000, pauseMs: parent.pause_ms, forkMs: parent.fork_ms };
  } finally {
    await killAll(made);
    await dropCaptures(made);
  }
}

/** mode: the daemon's default (live: the source runs on while its memory is copied) or full (stopped, as a guest fork is). */
async function forkOutside(mode: 'live' | 'full'): Promise<ForkSample> {
  const src = await spawnSource(null);
  const made = new Set([src]);
  try {
    await startProgram(src, '/root/loop.py', LOOP_PY, ['outside', String(FORK_N)]);
    await put(src, 'go');
    const t = nowMs();
    const f = await c.forkSandbox(src, { count: FORK_N, mode, vary: { branch: Array.from({ length: FORK_N }, (_, i) => i) } });
    const callMs = since(t);
    for (const k of f.children) made.add(k.id);
    // Does the loop go on in every child? Not timed; counted and reported (a bench run once saw a child without it).
    // Under heavy load the check itself may time out: counted as unknown, never a failed round.
    const ps = await Promise.all(f.children.map((k) => c.exec(k.id, { args: ['sh', '-c', 'pgrep -f loop.py >/dev/null && echo running || { echo gone; ps -eo pid,stat,args | grep -v "\\[" | tail -5; }'], timeout_secs: 120 }).catch((e: Error) => ({ stdout: `unknown (${e.message})` }))));
    const running = ps.filter((r) => r.stdout.startsWith('running')).length;
    if (running !== FORK_N) log(`  ${mode}: the loop runs in ${running}/${FORK_N} children; ${ps.map((r) => r.stdout.trim()).filter((o) => !o.startsWith('running')).join(' | ')}`);
    return { callToContinueMs: callMs, pauseMs: f.pause_ms, forkMs: f.fork_ms, loopRunning: running };
  } finally {
    await killAll(made);
    await dropCaptures(made);
  }
}

interface BeamSample { wallMs: number; score: number; sandboxes: number }

/** The guest agent forks itself; the host scores, keeps WIDTH, kills the rest, says go. */
async function beamInside(): Promise<BeamSample> {
  const src = await spawnSource({ max_count: K, max_depth: DEPTH });
  const made = new Set([src]);
  const alive = new Set<string>();
  try {
    await startProgram(src, '/root/agent.py', BEAM_PY, [String(K), String(DEPTH), JSON.stringify(TEMPS)]);
    const t = nowMs();
    let beam = [src];
    let scored: Array<{ id: string; score: number }> = [];
    for (let level = 1; level <= DEPTH; level++) {
      await Promise.all(beam.map((id) => put(id, `go-${level - 1}`)));
      const forks = await Promise.all(beam.map(async (id) => ({ id, ...(await waitFile<{ children?: string[]; error?: string }>(id, `children-${level}`, FORK_WAIT_SECS).catch((e: Error): { children?: string[]; error?: string } => ({ error: `no answer: ${e.message}` }))) })));
      for (const f of forks) if (f.error) throw new Error(`guest fork at level ${level} in ${f.id} (${forks.filter((x) => !x.error).length}/${forks.length} of this level's forks went through): ${f.error}`);
      const children = forks.flatMap((x) => x.children!);
      for (const id of children) { made.add(id); alive.add(id); }
      scored = await Promise.all(children.map(async (id) => ({ id, score: (await waitFile<{ score: number }>(id, `score-${level}`)).score })));
      scored.sort((a, b) => b.score - a.score);
      const drop = [...scored.slice(WIDTH).map((s) => s.id), ...beam.filter((id) => id !== src)];
      for (const id of drop) alive.delete(id);
      await killAll(drop);
      scored = scored.slice(0, WIDTH);
      beam = scored.map((s) => s.id);
    }
    const losers = beam.slice(1);
    for (const id of losers) alive.delete(id);
    await killAll(losers);
    return { wallMs: since(t), score: scored[0]!.score, sandboxes: made.size - 1 };
  } finally {
    await killAll(made);
    await dropCaptures(made);
  }
}

/** The SDK's treeSearch through REST: fork with vary, step and score by eval in each child. */
async function beamOutside(): Promise<BeamSample> {
  const [info] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  const root = sandboxOf(c, info!);
  const made = new Set([root.sandboxId]);
  try {
    const setup = await c.eval(root.sandboxId, { code: `import random\n${STEP_PY}\nscore = 0.0` });
    if (setup.error) throw new Error(setup.error);
    const t = nowMs();
    const r = await treeSearch(root, { vary: { temperature: TEMPS }, run: { code: 'score += step(temperature)' }, score: { code: 'score' }, width: WIDTH, depth: DEPTH });
    const wallMs = since(t);
    for (const n of r.tree) made.add(n.id);
    return { wallMs, score: r.score, sandboxes: r.tree.length - 1 };
  } finally {
    await killAll(made);
    await dropCaptures(made);
  }
}

const fork = { inside: [] as ForkSample[], outside: [] as ForkSample[], outsideFull: [] as ForkSample[] };
const beam = { inside: [] as BeamSample[], outside: [] as BeamSample[] };
try {
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate the order so neither path always runs on a warmer (or busier) host.
    const order = i % 2 === 0 ? (['inside', 'outside'] as const) : (['outside', 'inside'] as const);
    if (!SKIP.has('fork')) {
      for (const how of (i % 2 === 0 ? ['inside', 'outside', 'outsideFull'] : ['outsideFull', 'outside', 'inside']) as Array<keyof typeof fork>) {
        const s = how === 'inside' ? await forkInside() : await forkOutside(how === 'outside' ? 'live' : 'full');
        fork[how].push(s);
        log(`round ${i + 1}/${ROUNDS} fork(${FORK_N}) ${how}: call -> all continuing ${s.callToContinueMs.toFixed(0)} ms, source pause ${s.pauseMs} ms, fork ${s.forkMs} ms${s.loopRunning !== undefined ? `, loop running in ${s.loopRunning}/${FORK_N}` : ''} (load ${loadAverage()})`);
      }
    }
    if (!SKIP.has('beam')) {
      for (const how of order) {
        const s = how === 'inside' ? await beamInside() : await beamOutside();
        beam[how].push(s);
        log(`round ${i + 1}/${ROUNDS} beam ${how}: ${s.wallMs.toFixed(0)} ms, ${s.sandboxes} children, best score ${s.score.toFixed(2)} (load ${loadAverage()})`);
      }
    }
    loads.push(loadAverage());
  }
} finally {
  await d.stop();
}

const st = (xs: number[]) => summarize(xs);
const ratio = (a: number[], b: number[]) => (b.length && a.length ? (st(a).median / st(b).median).toFixed(2) : 'n/a');
const out: string[] = [];
out.push(`bench:tree — ${new Date().toISOString()} — ${hostLine()}, accel ${platform.accel}, QEMU ${platform.qemuVersion}`);
out.push(`ROUNDS=${ROUNDS} FORK_N=${FORK_N} K=${K} WIDTH=${WIDTH} DEPTH=${DEPTH} temperatures ${TEMPS.join(',')}; load average per round: ${loads.join(' | ')}`);
out.push('min / median / max:');
if (fork.inside.length) {
  out.push(`fork(${FORK_N}) from inside (forkd.fork in a running Python loop): call -> all ${FORK_N} children continuing ${fmt(st(fork.inside.map((s) => s.callToContinueMs)))}; source pause ${fmt(st(fork.inside.map((s) => s.pauseMs)))}; host fork_ms ${fmt(st(fork.inside.map((s) => s.forkMs)))}`);
  out.push(`fork(${FORK_N}) from outside (REST, loop running, default mode live): request -> answer with ${FORK_N} children ${fmt(st(fork.outside.map((s) => s.callToContinueMs)))}; source pause ${fmt(st(fork.outside.map((s) => s.pauseMs)))}; fork_ms ${fmt(st(fork.outside.map((s) => s.forkMs)))}`);
  out.push(`fork(${FORK_N}) from outside, mode full (stopped capture, as inside): request -> answer ${fmt(st(fork.outsideFull.map((s) => s.callToContinueMs)))}; source pause ${fmt(st(fork.outsideFull.map((s) => s.pauseMs)))}; fork_ms ${fmt(st(fork.outsideFull.map((s) => s.forkMs)))}`);
  const med = (k: keyof typeof fork, f: (s: ForkSample) => number) => fork[k].map(f);
  out.push(`  inside / outside live (medians): call -> continuing ${ratio(med('inside', (s) => s.callToContinueMs), med('outside', (s) => s.callToContinueMs))}, pause ${ratio(med('inside', (s) => s.pauseMs), med('outside', (s) => s.pauseMs))}`);
  out.push(`  inside / outside full (medians): call -> continuing ${ratio(med('inside', (s) => s.callToContinueMs), med('outsideFull', (s) => s.callToContinueMs))}, pause ${ratio(med('inside', (s) => s.pauseMs), med('outsideFull', (s) => s.pauseMs))}`);
}
if (beam.inside.length) {
  out.push(`beam search depth ${DEPTH} width ${WIDTH} (K=${K} per expansion, ${beam.inside[0]!.sandboxes} children) from inside: ${fmt(st(beam.inside.map((s) => s.wallMs)))}`);
  out.push(`beam search depth ${DEPTH} width ${WIDTH} (K=${K} per expansion, ${beam.outside[0]?.sandboxes ?? '?'} children) treeSearch via REST: ${fmt(st(beam.outside.map((s) => s.wallMs)))}`);
  out.push(`  inside / outside (medians): ${ratio(beam.inside.map((s) => s.wallMs), beam.outside.map((s) => s.wallMs))}`);
}
process.stdout.write(`${out.join('\n')}\n`);

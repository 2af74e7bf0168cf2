/**
 * Issue-4 benchmark: BRANCH pause windows and chain spawn cost, measured as users feel them.
 *   - pause window (QEMU STOP -> RESUME of the source) of live and full branches of a 512 MiB
 *     sandbox that has dirtied 64 MiB, snapshot store (so memory files) on tmpfs, BRANCHES each
 *   - spawn (-> agent answered) from the head of a depth-3 snapshot-diff chain vs from its
 *     compacted flat equivalent, alternated in the same run
 *   - storage of each chain layer against the full image
 * Usage: npm run bench:branch   (BRANCHES=10 SPAWNS=10; BENCH_ROOT=/dev/shm/forkd-bench-snapshots)
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, summarize, nowMs, since, type Sandbox } from '@forkd/engine';
import { fixtureRecipe } from '@forkd/engine/testing';

const BRANCHES = Number(process.env.BRANCHES ?? 10);
const SPAWNS = Number(process.env.SPAWNS ?? 10);
const ROOT = process.env.BENCH_ROOT ?? '/dev/shm/forkd-bench-snapshots';
const log = (s: string) => process.stderr.write(`${s}\n`);
const engine = new Engine({ snapshotRoot: ROOT, accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto' });
const env = await engine.platform.resolve();
const BASE = 'bench-base';
const fmt = (s: { min: number; median: number; max: number }, unit = 'ms', d = 1) => `${s.min.toFixed(d)} / ${s.median.toFixed(d)} / ${s.max.toFixed(d)} ${unit}`;
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function fresh(tag: string): Promise<void> {
  await engine.removeSnapshot(tag, { cascade: true }).catch(() => undefined);
}

// A warm python base (512 MiB) in the tmpfs store: made once, reused.
if (!(await engine.getSnapshot(BASE).then(() => true, () => false))) {
  log(`creating ${BASE} in ${ROOT}`);
  await engine.createSnapshot({ tag: BASE, recipe: await fixtureRecipe(), memMib: 512, onProgress: (e) => log(`  [${e.phase}] ${e.message}`) });
}

async function dirty64(sb: Sandbox, round: number): Promise<void> {
  // 64 MiB of pages written (not just allocated), different content every round.
  const r = await sb.eval('python', `buf = bytearray(64 * 1024 * 1024)\nbuf[::4096] = bytes([${(round % 250) + 1}]) * (len(buf) // 4096)\nlen(buf)`, { timeoutMs: 60_000 });
  if (!r.ok) throw new Error(JSON.stringify(r.error));
}

interface BranchSample { pauseMs: number; captureMs: number; totalMs: number; layerBytes: number }
const results: Record<'live' | 'full', BranchSample[]> = { live: [], full: [] };
const [src] = await engine.spawn({ tag: BASE, n: 1 });
try {
  for (let i = 0; i < BRANCHES; i++) {
    for (const mode of (i % 2 ? ['full', 'live'] : ['live', 'full']) as Array<'live' | 'full'>) {
      await dirty64(src!, i);
      const tag = `bench-br-${mode}-${i}`;
      await fresh(tag);
      const r = await engine.branch(src!, { tag, mode });
      results[mode].push({ pauseMs: r.pauseMs, captureMs: r.captureMs, totalMs: r.totalMs, layerBytes: r.snapshot.manifest.files.memory.physical_bytes + r.snapshot.manifest.files.disk.physical_bytes });
      log(`  ${mode} branch ${i + 1}/${BRANCHES}: pause ${r.pauseMs} ms, capture ${r.captureMs} ms, total ${r.totalMs} ms`);
      await engine.removeSnapshot(tag);
    }
  }
} finally {
  await src!.kill();
}

log('building a depth-3 chain with snapshot-diff, and its flat equivalent');
const chain = ['bench-l1', 'bench-l2', 'bench-l3'];
for (const t of [...chain].reverse()) await fresh(t);
await fresh('bench-flat');
const cmds = [
  'pip3 --version >/dev/null 2>&1; python3 -c "import json; json.dump(list(range(100000)), open(\'/root/data.json\', \'w\'))"',
  'dd if=/dev/urandom of=/root/blob bs=1M count=8 status=none && sync',
  'echo "config = 3" > /root/config.py && python3 -c "import numpy; numpy.save(\'/root/arr.npy\', numpy.arange(1000000))"',
];
let from = BASE;
for (const [i, t] of chain.entries()) {
  await engine.diffSnapshot({ from, to: t, cmd: cmds[i]! });
  from = t;
}
await engine.compactSnapshot({ from: 'bench-l3', to: 'bench-flat' });
const storage = await Promise.all([BASE, ...chain, 'bench-flat'].map(async (t) => {
  const m = (await engine.getSnapshot(t)).manifest;
  return { tag: t, memory: m.files.memory.physical_bytes, disk: m.files.disk.physical_bytes, vmstate: m.files.vmstate.bytes, changedPages: m.files.pages?.changed_pages ?? null };
}));

const spawnMs: Record<'chain' | 'flat', number[]> = { chain: [], flat: [] };
for (let i = 0; i < SPAWNS; i++) {
  for (const which of (i % 2 ? ['flat', 'chain'] : ['chain', 'flat']) as Array<'chain' | 'flat'>) {
    const t0 = nowMs();
    const [sb] = await engine.spawn({ tag: which === 'chain' ? 'bench-l3' : 'bench-flat', n: 1 });
    spawnMs[which].push(since(t0));
    const ok = await sb!.commands.exec({ shell: 'test -s /root/arr.npy && test -s /root/blob && test -s /root/data.json && echo ok' });
    await sb!.kill();
    if (ok.stdout.trim() !== 'ok') throw new Error(`${which} child misses a layer's files`);
  }
}

const sum = (m: 'live' | 'full', f: (s: BranchSample) => number) => summarize(results[m].map(f));
const ratio = summarize(spawnMs.chain.map((v, i) => v / spawnMs.flat[i]!));
const cpu = os.cpus()[0]?.model ?? 'unknown';
const fullImage = storage.find((s) => s.tag === 'bench-flat')!;
const lines = [
  `machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; accel ${env.accel}; QEMU ${env.qemuVersion}; snapshot store ${ROOT} (tmpfs)`,
  `command: BRANCHES=${BRANCHES} SPAWNS=${SPAWNS} npm run bench:branch; 512 MiB guest, 64 MiB dirtied before each branch; min / median / max`,
  '',
  '| figure | min / median / max | target |',
  '|---|---|---|',
  `| live branch: source paused (QEMU STOP → RESUME) | ${fmt(sum('live', (s) => s.pauseMs))} | p50 ≤ 50 ms |`,
  `| live branch: request → source running again | ${fmt(sum('live', (s) => s.captureMs), 'ms', 0)} | |`,
  `| live branch: whole capture (snapshot usable) | ${fmt(sum('live', (s) => s.totalMs), 'ms', 0)} | |`,
  `| full branch: source paused | ${fmt(sum('full', (s) => s.pauseMs), 'ms', 0)} | |`,
  `| full branch: whole capture | ${fmt(sum('full', (s) => s.totalMs), 'ms', 0)} | |`,
  `| branch layer stored (memory pages + disk) | ${fmt(summarize([...results.live, ...results.full].map((s) => s.layerBytes / 2 ** 20)), 'MiB')} | |`,
  `| spawn → ready from a depth-3 chain head | ${fmt(summarize(spawnMs.chain), 'ms', 0)} | |`,
  `| spawn → ready from its flat equivalent | ${fmt(summarize(spawnMs.flat), 'ms', 0)} | |`,
  `| chain / flat (paired runs) | ${fmt(ratio, 'x', 2)} | ≤ 1.10x |`,
  '',
  '| snapshot | memory stored | disk layer stored | vmstate | changed pages |',
  '|---|---|---|---|---|',
  ...storage.map((s) => `| ${s.tag} | ${mib(s.memory)} | ${mib(s.disk)} | ${(s.vmstate / 1024).toFixed(0)} KiB | ${s.changedPages ?? '(flat)'} |`),
  `| (full image of the chain head: ${mib(fullImage.memory)} memory + ${mib(fullImage.disk)} disk over the base image) | | | | |`,
];
process.stdout.write(`${lines.join('\n')}\n`);
const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
await fs.mkdir(outDir, { recursive: true });
await fs.writeFile(path.join(outDir, `branch-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu, accel: env.accel, qemu: env.qemuVersion, root: ROOT }, BRANCHES, SPAWNS, results, spawnMs, storage }, null, 2));
for (const t of [...chain].reverse()) await fresh(t);
await fresh('bench-flat');

/**
 * Issue-12 benchmark: snapshots through a loopback OCI registry and packs, as users feel them.
 *   - pack, push (to an empty repository), pull (onto an empty store) and unpack (onto an empty
 *     store) of the warm python snapshot (512 MiB guest plus its image): time, bytes, ratio of the
 *     logical size (guest RAM + image + disk layer) to the bytes that travel
 *   - baseline in the same run: `tar -cS | zstd -3 -T0` of the same files (the original forkd's pack)
 *   - a chain head (a branch that dirtied 32 MiB) pulled onto a store that has its base: bytes moved
 *     against the head's own blobs
 * Registry: Debian's docker-registry on 127.0.0.1 (temp storage). RUNS=3 by default.
 * Usage: npm run bench:hub   (run it under the VM lock: flock /tmp/forkd-vm.lock npm run bench:hub)
 *   CHAIN=0 skips the chain-head part, the only one that boots a VM (a child to branch from).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Engine, summarize, nowMs, since } from '@forkd/engine';
import { ensureFixtureSnapshot, startRegistry } from '@forkd/engine/testing';

const RUNS = Number(process.env.RUNS ?? 3);
const log = (s: string) => process.stderr.write(`${s}\n`);
const accel = (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto';
const engine = new Engine({ accel, network: false });
const env = await engine.platform.resolve();
const base = await ensureFixtureSnapshot(engine);
const entry = await engine.getSnapshot(base);
const m = entry.manifest;
const work = `${engine.layout.root}-hub-bench`;
await fs.rm(work, { recursive: true, force: true });
await fs.mkdir(work, { recursive: true });
const registry = await startRegistry();
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const fmt = (s: { min: number; median: number; max: number }) => `${(s.min / 1000).toFixed(2)} / ${(s.median / 1000).toFixed(2)} / ${(s.max / 1000).toFixed(2)} s`;
let homeSeq = 0;
async function freshEngine(): Promise<Engine> {
  const home = path.join(work, `home-${homeSeq++}`);
  await fs.mkdir(home);
  execFileSync('cp', ['-al', engine.layout.cache, path.join(home, 'cache')]);
  return new Engine({ home, accel, network: false });
}

const imagePath = m.image.path;
const logical = m.files.memory.logical_bytes + (await fs.stat(imagePath)).size + (await fs.stat(path.join(entry.dir, 'disk.qcow2'))).size;
const physical = m.files.memory.physical_bytes + (await fs.stat(imagePath)).blocks * 512 + m.files.disk.physical_bytes;
log(`snapshot ${base}: ${m.machine.mem_mib} MiB guest, logical ${mib(logical)} (RAM + image + disk layer), on disk ${mib(physical)}`);

const t = { baseline: [] as number[], pack: [] as number[], push: [] as number[], pull: [] as number[], unpack: [] as number[] };
let baselineBytes = 0;
let packBytes = 0;
let pushBytes = 0;
let pullBytes = 0;
try {
  for (let i = 0; i < RUNS; i++) {
    // Baseline: one tar.zst of the snapshot directory and the image, as the original forkd packs.
    let t0 = nowMs();
    const tarFile = path.join(work, `baseline-${i}.tar.zst`);
    execFileSync('sh', ['-c', `tar -cSf - -C "${path.dirname(entry.dir)}" "${path.basename(entry.dir)}" -C "${path.dirname(imagePath)}" "${path.basename(imagePath)}" | zstd -q -3 -T0 -o "${tarFile}"`]);
    t.baseline.push(since(t0));
    baselineBytes = (await fs.stat(tarFile)).size;
    await fs.rm(tarFile);

    t0 = nowMs();
    const packFile = path.join(work, `pack-${i}.tar`);
    const packed = await engine.packSnapshot({ tag: base, file: packFile });
    t.pack.push(since(t0));
    packBytes = packed.bytes;

    t0 = nowMs();
    const pushed = await engine.pushSnapshot({ tag: base, ref: `${registry.host}/bench/run${i}:python` });
    t.push.push(since(t0));
    pushBytes = pushed.bytes_sent;

    const puller = await freshEngine();
    t0 = nowMs();
    const pulled = await puller.pullSnapshot({ ref: `${registry.host}/bench/run${i}:python` });
    t.pull.push(since(t0));
    pullBytes = pulled.bytes_received;

    const unpacker = await freshEngine();
    t0 = nowMs();
    await unpacker.unpackSnapshot({ file: packFile });
    t.unpack.push(since(t0));
    await fs.rm(packFile);
    await fs.rm(puller.layout.root, { recursive: true, force: true });
    await fs.rm(unpacker.layout.root, { recursive: true, force: true });
    log(`  run ${i + 1}/${RUNS}: baseline ${t.baseline[i]} ms, pack ${t.pack[i]} ms, push ${t.push[i]} ms, pull ${t.pull[i]} ms, unpack ${t.unpack[i]} ms (load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})`);
  }

  // A chain head whose base the puller has: only the head's blobs should travel.
  let chainLine = 'chain head: skipped (CHAIN=0)';
  if (process.env.CHAIN !== '0') {
    const headTag = 'hub-bench-head';
    await engine.removeSnapshot(headTag).catch(() => undefined);
    const [src] = await engine.spawn({ tag: base, n: 1 });
    try {
      const r = await src!.eval('python', 'hub = bytearray(32 * 1024 * 1024)\nhub[::4096] = b"h" * (len(hub) // 4096)\nlen(hub)', { timeoutMs: 60_000 });
      if (!r.ok) throw new Error(JSON.stringify(r.error));
      await engine.branch(src!, { tag: headTag, mode: 'full' });
    } finally {
      await src!.kill();
    }
    const baseRef = `${registry.host}/bench/chain:base`;
    const headRef = `${registry.host}/bench/chain:head`;
    const pb = await engine.pushSnapshot({ tag: base, ref: baseRef });
    const ph = await engine.pushSnapshot({ tag: headTag, ref: headRef });
    const headOwn = ph.bytes_total - pb.bytes_total;
    const puller = await freshEngine();
    await puller.pullSnapshot({ ref: baseRef });
    const t0 = nowMs();
    const head = await puller.pullSnapshot({ ref: headRef });
    const headMs = since(t0);
    await engine.removeSnapshot(headTag).catch(() => undefined);
    chainLine = `chain head (32 MiB dirtied) pulled onto a store with its base: ${mib(head.bytes_received)} received in ${(headMs / 1000).toFixed(2)} s; the head's own blobs are ${mib(headOwn)}; the whole chain is ${mib(ph.bytes_total)}`;
  }

  const s = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summarize(v)])) as unknown as Record<keyof typeof t, { min: number; median: number; max: number }>;
  const qemu = env.qemuVersion;
  const resultsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  await fs.mkdir(resultsDir, { recursive: true });
  const resultsFile = path.join(resultsDir, `hub-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await fs.writeFile(resultsFile, JSON.stringify({ runs: RUNS, accel: env.accel, qemu, loadavg: os.loadavg(), logical, physical, ms: t, bytes: { baseline: baselineBytes, pack: packBytes, push: pushBytes, pull: pullBytes }, chain: chainLine }, null, 2));
  log(`raw rounds: ${path.relative(process.cwd(), resultsFile)}`);
  process.stdout.write(
    [
      `## bench:hub — ${new Date().toISOString()}`,
      `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${mib(os.totalmem())} RAM; accel ${env.accel}; QEMU ${qemu}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
      `command: RUNS=${RUNS} npm run bench:hub   (registry: docker-registry on ${registry.host})`,
      `snapshot: ${base}, ${m.machine.mem_mib} MiB guest; logical ${mib(logical)} (RAM + image + disk layer), on disk ${mib(physical)}`,
      '',
      '| step (min / median / max over runs) | time | bytes | logical ÷ bytes |',
      '|---|---|---|---|',
      `| baseline: tar -cS \\| zstd -3 -T0 (original forkd pack) | ${fmt(s.baseline)} | ${mib(baselineBytes)} | ${(logical / baselineBytes).toFixed(1)}x |`,
      `| forkd pack | ${fmt(s.pack)} | ${mib(packBytes)} | ${(logical / packBytes).toFixed(1)}x |`,
      `| forkd push (empty repository) | ${fmt(s.push)} | ${mib(pushBytes)} sent | ${(logical / pushBytes).toFixed(1)}x |`,
      `| forkd pull (empty store) | ${fmt(s.pull)} | ${mib(pullBytes)} received | ${(logical / pullBytes).toFixed(1)}x |`,
      `| forkd unpack (empty store) | ${fmt(s.unpack)} | — | — |`,
      '',
      `pack / baseline median: ${(s.pack.median / s.baseline.median).toFixed(2)}x time, ${(packBytes / baselineBytes).toFixed(2)}x bytes`,
      chainLine,
      '',
    ].join('\n'),
  );
} finally {
  await registry.stop();
  await fs.rm(work, { recursive: true, force: true });
}

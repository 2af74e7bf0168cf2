/**
 * Issue 14 §7: what isolation costs, as users feel it, in one run against a baseline in the same run.
 *   - spawn of N children WITH networking + egress policy + quotas (memory, pids, cpu weight) against
 *     N WITHOUT, alternated (ABBA) over ROUNDS: per-child spawn → ready (agent answered), min/median/max
 *   - the same for one child at a time (SINGLES pairs per round): the set-up cost without contention
 *   - first byte of a getHost (exposePort) connection to a server in a child, host client on loopback,
 *     against curl from inside the child's namespace straight to the guest (no forwarder)
 *   - a child's download from a test host in a namespace this script made (its uplink is a test
 *     namespace, never the real one; the egress policy allows that host), against the same download
 *     made from the uplink namespace itself (no VM)
 *   - the host set-up without VMs, step by step (setup-profile.ts)
 * Run as root: npm run bench:isolation   (ROUNDS=3 N=20 SINGLES=5 DL_MB=32)
 */
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { cpuModel, loadAverage, hostLine } from '../host.js';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { summarize } from '@forkd/engine';
// From source, as the fixture is: one Engine type for the fixture's and this script's calls.
import { DEFAULT_PROXY, EgressService } from '../../packages/engine/src/network/egress/index.js';
import type { Sandbox } from '../../packages/engine/src/sandbox/sandbox.js';
import { openNetLab } from '../../packages/engine/src/testing/net-lab.js';
import { speedProbeMs } from '../speed-probe.js';
import { profileSetup } from './setup-profile.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const N = Number(process.env.N ?? 20);
const SINGLES = Number(process.env.SINGLES ?? 5);
const DL_MB = Number(process.env.DL_MB ?? 32);
const QUOTAS = { memoryMib: 512, pidsMax: 256, cpuWeight: 50 };
const log = (s: string) => process.stderr.write(`${s}\n`);
const load = loadAverage;
const fmt = (xs: number[], d = 0) => { const s = summarize(xs); return `${s.min.toFixed(d)} / ${s.median.toFixed(d)} / ${s.max.toFixed(d)}`; };
const med = (xs: number[]) => summarize(xs).median;

if (process.getuid?.() !== 0) throw new Error('bench:isolation needs root (network namespaces, cgroups)');
if (process.env.PROFILE_ONLY === '1') {
  process.stdout.write(`${(await profileSetup(log)).join('\n')}\n`);
  process.exit(0);
}
const lab = await openNetLab();
process.env.FORKD_RUN_DIR = lab.runDir; // this run's namespaces are named apart from every other's
const { Engine } = await import('../../packages/engine/src/engine.js');
const { ensureFixtureSnapshot } = await import('../../packages/engine/src/testing/fixture.js');
const engine = new Engine({ accel: (process.env.FORKD_ACCEL as 'auto' | 'kvm' | 'tcg' | undefined) ?? 'auto', network: { pool: lab.pool, uplinkNetns: lab.uplinkNetns } });
let egress: EgressService | null = null;
const live = new Set<Sandbox>();
const testUrl = (file: string) => `http://${lab.testHost}:${lab.httpPort}/${file}`;

interface Arm { ready: number[]; launch: number[] }
const arm = (): Arm => ({ ready: [], launch: [] });

async function spawnArm(withIso: boolean, n: number, into: Arm): Promise<void> {
  const sbs = await engine.spawn({ tag, n, ...(withIso ? { network: true, egress: { allowOut: [`${lab.testHost}/32`] }, quotas: QUOTAS } : {}) });
  for (const s of sbs) live.add(s);
  for (const s of sbs) {
    into.ready.push(s.timings.spawn_to_ready_ms);
    into.launch.push(s.timings.phases.launch_ms);
  }
  await Promise.all(sbs.map(async (s) => { await s.kill(); live.delete(s); }));
}

/** Time to the first byte of an HTTP answer over a fresh TCP connection. */
function firstByteMs(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect(port, host, () => s.write('GET /id.txt HTTP/1.0\r\nHost: x\r\n\r\n'));
    s.once('data', () => { resolve(performance.now() - t0); s.destroy(); });
    s.once('error', reject);
    s.setTimeout(15_000, () => { s.destroy(); reject(new Error('first byte timeout')); });
  });
}

async function startGuestServer(sb: Sandbox, port: number): Promise<void> {
  await sb.commands.exec({ shell: `mkdir -p /srv/w && echo ok > /srv/w/id.txt && (cd /srv/w && setsid python3 -m http.server ${port} >/dev/null 2>&1 &) ; sleep 0.1`, timeout_ms: 20_000 });
  for (let i = 0; i < 100; i++) {
    const r = await sb.commands.exec({ shell: `python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 1)" && echo up`, timeout_ms: 20_000 });
    if (r.stdout.includes('up')) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('guest server did not start');
}

/** A download inside the guest (python, timed by the guest's monotonic clock): [bytes, seconds]. */
async function guestDownload(sb: Sandbox, url: string): Promise<[number, number]> {
  const r = await sb.eval('python', `
import urllib.request, time
_t = time.monotonic(); _n = 0
with urllib.request.urlopen(${JSON.stringify(url)}, timeout=120) as _r:
    while True:
        _b = _r.read(1 << 20)
        if not _b: break
        _n += len(_b)
[_n, time.monotonic() - _t]`, { timeoutMs: 180_000 });
  if (!r.ok) throw new Error(`guest download failed: ${JSON.stringify(r.error)}`);
  return r.json as [number, number];
}

let tag = '';
try {
  tag = await ensureFixtureSnapshot(engine);
  egress = await EgressService.start(
    { defaultEgress: 'deny', childPools: [lab.pool], hostAddresses: [], allowPrivate: [lab.testRange], proxy: DEFAULT_PROXY, resolvers: [] },
    { uplinkNetns: lab.uplinkNetns, controlSocket: path.join(lab.runDir, 'egress.sock') },
  );
  engine.networks!.useEgress(egress);
  await fs.writeFile(path.join(os.tmpdir(), `${lab.tag}-www`, 'big.bin'), crypto.randomBytes(DL_MB * 2 ** 20));
  const env = await engine.platform.resolve();
  const loadBefore = load();
  const speedBefore = speedProbeMs();
  log('warm-up: one child each way (first spawns pay cold caches)');
  await spawnArm(true, 1, arm());
  await spawnArm(false, 1, arm());

  const batch = { iso: arm(), plain: arm() };
  const single = { iso: arm(), plain: arm() };
  const batchDiff: number[] = [];
  const singleDiff: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? [true, false] : [false, true];
    const round = { iso: arm(), plain: arm() };
    for (const iso of order) {
      log(`round ${r + 1}/${ROUNDS}: ${N} ${iso ? 'WITH' : 'without'} network + quotas (load ${load()})`);
      await spawnArm(iso, N, round[iso ? 'iso' : 'plain']);
    }
    batchDiff.push(med(round.iso.ready) - med(round.plain.ready));
    batch.iso.ready.push(...round.iso.ready); batch.iso.launch.push(...round.iso.launch);
    batch.plain.ready.push(...round.plain.ready); batch.plain.launch.push(...round.plain.launch);
    log(`round ${r + 1}/${ROUNDS}: ${SINGLES} pairs of one child`);
    for (let k = 0; k < SINGLES; k++) {
      const pair = { iso: arm(), plain: arm() };
      for (const iso of (k + r) % 2 === 0 ? [true, false] : [false, true]) await spawnArm(iso, 1, pair[iso ? 'iso' : 'plain']);
      singleDiff.push(pair.iso.ready[0]! - pair.plain.ready[0]!);
      for (const side of ['iso', 'plain'] as const) { single[side].ready.push(...pair[side].ready); single[side].launch.push(...pair[side].launch); }
    }
  }

  log('getHost first byte and download');
  const [sb] = await engine.spawn({ tag, n: 1, network: true, egress: { allowOut: [`${lab.testHost}/32`] }, quotas: QUOTAS });
  live.add(sb!);
  await startGuestServer(sb!, 8000);
  const exposed = await sb!.exposePort(8000);
  const viaHost: number[] = [];
  const inNetns: number[] = [];
  for (let i = 0; i < 10; i++) {
    viaHost.push(await firstByteMs(exposed.host, exposed.port));
    inNetns.push(1000 * Number(lab.exec(sb!.netns!, ['curl', '-s', '-o', '/dev/null', '-w', '%{time_starttransfer}', `http://${sb!.guestAddr}:8000/id.txt`])));
  }
  const dl: number[] = [];
  const dlHost: number[] = [];
  for (let i = 0; i < 3; i++) {
    const [bytes, secs] = await guestDownload(sb!, testUrl('big.bin'));
    if (bytes !== DL_MB * 2 ** 20) throw new Error(`guest downloaded ${bytes} bytes, expected ${DL_MB} MiB`);
    dl.push(bytes / 2 ** 20 / secs);
    const out = lab.exec(lab.uplinkNetns, ['curl', '-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', testUrl('big.bin')], 120_000).split(' ');
    dlHost.push(Number(out[0]) / 2 ** 20 / Number(out[1]));
  }
  await sb!.kill();
  live.delete(sb!);

  log('host set-up profile (no VM)');
  const profile = await profileSetup(log, { lab, egress });
  const speedAfter = speedProbeMs();
  const lines = [
    `machine: ${hostLine()}; accel ${env.accel}; QEMU ${env.qemuVersion}; kernel ${env.kernel.version}`,
    `command: ROUNDS=${ROUNDS} N=${N} SINGLES=${SINGLES} DL_MB=${DL_MB} npm run bench:isolation   (fixture snapshot; quotas memory_limit_mib=${QUOTAS.memoryMib} pids_max=${QUOTAS.pidsMax} cpu_weight=${QUOTAS.cpuWeight}; egress allow ${lab.testHost}/32)`,
    `load average before: ${loadBefore}; after: ${load()}; speed probe ${speedBefore} ms before, ${speedAfter} ms after (lower is faster)`,
    '',
    '| figure (ms unless said) | WITH network + quotas | without | difference per child (median of per-round/pair differences) |',
    '|---|---|---|---|',
    `| ${N} at once: spawn → ready per child, min / median / max (${ROUNDS * N} children each) | ${fmt(batch.iso.ready)} | ${fmt(batch.plain.ready)} | ${med(batchDiff).toFixed(0)} (rounds: ${batchDiff.map((d) => d.toFixed(0)).join(', ')}) |`,
    `| ${N} at once: QEMU started (launch phase, includes the network and cgroup set-up) | ${fmt(batch.iso.launch)} | ${fmt(batch.plain.launch)} | ${(med(batch.iso.launch) - med(batch.plain.launch)).toFixed(0)} (median vs median) |`,
    `| one at a time: spawn → ready (${ROUNDS * SINGLES} pairs) | ${fmt(single.iso.ready)} | ${fmt(single.plain.ready)} | ${med(singleDiff).toFixed(0)} (pairs: min ${Math.min(...singleDiff).toFixed(0)}, max ${Math.max(...singleDiff).toFixed(0)}) |`,
    `| one at a time: launch phase | ${fmt(single.iso.launch)} | ${fmt(single.plain.launch)} | ${(med(single.iso.launch) - med(single.plain.launch)).toFixed(0)} (median vs median) |`,
    '',
    '| figure | measured | baseline in the same run | ratio |',
    '|---|---|---|---|',
    `| first byte, host client → getHost (loopback forwarder) → guest http.server, fresh connection (n=10) | ${fmt(viaHost, 1)} ms | curl inside the child's namespace → guest: ${fmt(inNetns, 1)} ms | ${(med(viaHost) / med(inNetns)).toFixed(2)}x |`,
    `| download of ${DL_MB} MiB by the guest (python urllib) from the test host, egress allowed by CIDR (n=3) | ${fmt(dl, 1)} MiB/s | curl from the uplink namespace (no VM): ${fmt(dlHost, 0)} MiB/s | ${(med(dl) / med(dlHost)).toFixed(3)}x |`,
    '',
    ...profile,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const outDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');
  await fs.mkdir(outDir, { recursive: true });
  await fs.writeFile(path.join(outDir, `isolation-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify({ env: { cpu: cpuModel(), accel: env.accel, qemu: env.qemuVersion, load: [loadBefore, load()], speedProbeMs: [speedBefore, speedAfter] }, ROUNDS, N, SINGLES, DL_MB, batch, single, batchDiff, singleDiff, viaHost, inNetns, dl, dlHost, report: lines }, null, 2));
} finally {
  await Promise.all([...live].map((s) => s.kill().catch(() => undefined)));
  await egress?.stop().catch(() => undefined);
  await engine.cleanup().catch(() => undefined);
  await lab.close();
}

/**
 * Where a networked + quota'd spawn's extra time goes, without VMs: the host-side set-up a child
 * gets before QEMU starts (namespace, tap, veth, NAT, egress policy, cgroups) and its removal,
 * timed step by step on real namespaces and cgroups this script creates (uplink = a test namespace).
 * Part of npm run bench:isolation (PROFILE_N children, one at a time then all at once);
 * PROFILE_ONLY=1 npm run bench:isolation runs only this (no VM).
 */
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { summarize } from '@forkd/engine';
import { DEFAULT_PROXY, EgressService } from '../../packages/engine/src/network/egress/index.js';
import { ChildNetworks } from '../../packages/engine/src/network/index.js';
import { cgroupRootName, createChildCgroup, detectCgroups, removeCgroupDirs } from '../../packages/engine/src/quota/cgroup.js';
import { openNetLab, type NetLab } from '../../packages/engine/src/testing/net-lab.js';
import { countExecs } from './exec-count.js';

const N = Number(process.env.PROFILE_N ?? 20);
const QUOTAS = { memoryMib: 512, pidsMax: 256, cpuWeight: 50 };
const fmt = (xs: number[]) => { const s = summarize(xs); return `${s.min.toFixed(1)} / ${s.median.toFixed(1)} / ${s.max.toFixed(1)} ms`; };
const id = (i: number) => `${i.toString(16).padStart(8, '0')}${(process.pid % 0xffff).toString(16).padStart(4, '0')}0000`;

/** In a lab (and with an egress service) of the caller's, or in its own (run after the caller's children are gone). */
export async function profileSetup(log: (s: string) => void, shared?: { lab: NetLab; egress: EgressService }): Promise<string[]> {
  const lab = shared?.lab ?? (await openNetLab());
  process.env.FORKD_RUN_DIR = lab.runDir;
  const networks = new ChildNetworks({ pool: lab.pool, uplinkNetns: lab.uplinkNetns });
  await networks.ready();
  const egress = shared?.egress ?? (await EgressService.start(
    { defaultEgress: 'deny', childPools: [lab.pool], hostAddresses: [], allowPrivate: [lab.testRange], proxy: DEFAULT_PROXY, resolvers: [] },
    { uplinkNetns: lab.uplinkNetns, controlSocket: path.join(lab.runDir, 'egress.sock') },
  ));
  networks.useEgress(egress);
  const host = await detectCgroups();
  const rootName = cgroupRootName(lab.runDir);
  const out: string[] = [];
  try {
    const request = { allowOut: [`${lab.testHost}/32`] };
    const rows: Array<[string, (i: number) => Promise<() => Promise<void>>]> = [
      ['namespace + tap (a child without network)', async (i) => { const l = await networks.create(id(i), { network: false }); return () => l.release(); }],
      ['namespace + veth + NAT + egress policy (network)', async (i) => { const l = await networks.create(id(i), { network: true, egress: request }); return () => l.release(); }],
      [`cgroups (${host.version ? `v${host.version}` : 'none'}: memory, pids, cpu)`, async (i) => { const c = await createChildCgroup({ host, rootName, name: `vm-${id(i)}`, quotas: QUOTAS, diskDir: lab.runDir }); return () => c!.remove(); }],
    ];
    for (const [label, make] of rows) {
      const setup: number[] = [];
      const teardown: number[] = [];
      const execs = await countExecs(async () => {
        for (let i = 0; i < N; i++) {
          const t0 = performance.now();
          const undo = await make(i);
          setup.push(performance.now() - t0);
          const t1 = performance.now();
          await undo();
          teardown.push(performance.now() - t1);
        }
      });
      const t0 = performance.now();
      const undos = await Promise.all(Array.from({ length: N }, (_, i) => make(i)));
      const together = performance.now() - t0;
      await Promise.all(undos.map((u) => u()));
      const line = `| ${label} | ${fmt(setup)} | ${(execs.setup / N).toFixed(1)} | ${fmt(teardown)} | ${together.toFixed(0)} ms (${(together / N).toFixed(1)} per child) |`;
      log(line);
      out.push(line);
    }
    await fs.rm(path.join('/sys/fs/cgroup', rootName), { force: true, recursive: false }).catch(() => undefined);
    for (const c of ['memory', 'cpu', 'pids', 'blkio']) await removeCgroupDirs([path.join('/sys/fs/cgroup', c, rootName)]).catch(() => undefined);
  } finally {
    if (!shared) {
      await egress.stop();
      await lab.close();
    }
  }
  return [
    `host set-up per child, no VM (n=${N}; one at a time, then ${N} at once); load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    '',
    '| step | set-up min / median / max | processes Node spawns per child (set-up + removal) | removal min / median / max | all at once |',
    '|---|---|---|---|---|',
    ...out,
  ];
}

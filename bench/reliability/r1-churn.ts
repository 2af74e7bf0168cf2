/**
 * R1: spawn/kill cycles through REST. After a warm-up, counts what the daemon holds and leaves
 * (QEMU processes, VM run directories, Unix sockets, its fds, its RSS) before and after N cycles.
 */
import { Controller } from '@forkd/sdk';
import { startTestDaemon } from '@forkd/daemon/testing';
import { benchRunDir, fdCount, mmm, qemuCount, rssMiB, runDirCount, settle, socketFileCount, type Scenario } from './common.js';

const WARMUP = 10;

export const r1: Scenario = {
  id: 'R1',
  title: 'spawn/kill cycles through REST: leaks',
  vm: true,
  async run(o, out) {
    const runDir = benchRunDir();
    const d = await startTestDaemon({ keeperGraceSecs: 5 });
    const c = new Controller({ socketPath: d.socketPath });
    const pid = d.proc.pid!;
    const snap = async () => ({ qemu: qemuCount(runDir), dirs: runDirCount(runDir), sockets: await socketFileCount(runDir), fds: fdCount(pid), rss: rssMiB(pid) });
    const cycle = async () => {
      const t0 = performance.now();
      const [s] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
      await c.killSandbox(s!.id);
      return performance.now() - t0;
    };
    try {
      for (let i = 0; i < WARMUP; i++) await cycle();
      await settle(() => qemuCount(runDir) === 0 && runDirCount(runDir) === 0, 10_000);
      const before = await snap();
      const times: number[] = [];
      const failures: string[] = [];
      const rssAt: string[] = [];
      for (let i = 0; i < o.cycles; i++) {
        try {
          times.push(await cycle());
        } catch (e) {
          failures.push(`cycle ${i}: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.slice(0, 200));
        }
        if ((i + 1) % Math.max(1, Math.floor(o.cycles / 5)) === 0) {
          rssAt.push(`${i + 1}: ${rssMiB(pid).toFixed(0)}`);
          process.stderr.write(`# R1 ${i + 1}/${o.cycles} cycles\n`);
        }
      }
      // Kill answers before QEMU has exited and its directory is gone: give the teardown a moment.
      await settle(async () => qemuCount(runDir) <= before.qemu && runDirCount(runDir) <= before.dirs && (await socketFileCount(runDir)) <= before.sockets, 15_000);
      const after = await snap();
      const growth = ((after.rss - before.rss) / before.rss) * 100;
      out(`cycles: ${times.length} of ${o.cycles} completed after ${WARMUP} warm-up cycles; failures: ${failures.length}`);
      for (const f of failures.slice(0, 10)) out(`  failed ${f}`);
      out('');
      out('| figure | before | after | leaked | target |');
      out('|---|---|---|---|---|');
      out(`| QEMU processes (cwd in the run dir) | ${before.qemu} | ${after.qemu} | ${after.qemu - before.qemu} | 0 |`);
      out(`| VM run directories | ${before.dirs} | ${after.dirs} | ${after.dirs - before.dirs} | 0 |`);
      out(`| Unix sockets under the run dir | ${before.sockets} | ${after.sockets} | ${after.sockets - before.sockets} | 0 |`);
      out(`| daemon fds (/proc/pid/fd) | ${before.fds} | ${after.fds} | ${after.fds - before.fds} | 0 |`);
      out(`| daemon RSS | ${before.rss.toFixed(0)} MiB | ${after.rss.toFixed(0)} MiB | ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} % | < 10 % |`);
      out('');
      out(`cycle time (spawn n=1 → ready, then kill → 204), min / median / max: ${mmm(times)}`);
      out(`daemon RSS (MiB) after cycles: ${rssAt.join(', ')}`);
    } finally {
      await d.stop();
    }
  },
};

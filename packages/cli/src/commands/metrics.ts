/** `forkd metrics ID`: a sandbox's CPU, memory and disk, guest and host side (a fresh sample, plus the kept ones with --all). */
import type { Command } from 'commander';
import type { Controller } from '@forkd/sdk';
import type { CliContext } from '../client.js';
import { bytes, printJson, table } from '../output.js';

interface MetricsFlags {
  all?: boolean;
  json?: boolean;
}

export async function metricsCmd(c: Controller, id: string, o: MetricsFlags): Promise<void> {
  const r = await c.getSandboxMetrics(id);
  const samples = o.all ? r.samples : r.samples.slice(-1);
  if (o.json) return printJson({ sandbox_id: r.sandbox_id, samples });
  const b = (v: number | null) => (v === null ? '-' : bytes(v));
  process.stdout.write(`${table(['TIME', 'CPU%', 'CPUS', 'MEM', 'DISK', 'QEMU CPU%', 'QEMU RSS', 'CGROUP MEM', 'OVERLAY'], samples.map((s) => [
    s.timestamp, s.cpu_used_pct, s.cpu_count, `${b(s.mem_used)}/${b(s.mem_total)}`, `${b(s.disk_used)}/${b(s.disk_total)}`, s.host.cpu_pct, b(s.host.rss_bytes), b(s.host.cgroup_memory_bytes), b(s.host.disk_overlay_bytes),
  ]))}\n`);
}

export function registerMetricsCommand(program: Command, { run, client }: CliContext): void {
  program.command('metrics').argument('<id>', 'sandbox id').description("a sandbox's CPU, memory and disk from the guest and the host (QEMU, cgroup); sampled every 5 s for 5 minutes after each ask")
    .option('--all', 'every sample kept, not only the fresh one')
    .option('--json', 'JSON output')
    .action(run(async (id: string, o: MetricsFlags) => metricsCmd(await client(), id, o)));
}

import type { Engine } from '@forkd/engine';
import { printJson, table } from '../output.js';

export async function doctor(engine: Engine, o: { json?: boolean }): Promise<number> {
  const report = await engine.doctor();
  if (o.json) printJson(report);
  else {
    const mark = { pass: 'PASS', warn: 'WARN', fail: 'FAIL' } as const;
    process.stdout.write(`${table(['CHECK', 'STATUS', 'DETAIL'], report.checks.map((c) => [c.name, mark[c.status], c.detail]))}\n`);
    if (report.accel.verdict) process.stdout.write(`\nacceleration verdict: ${report.accel.verdict} — ${report.accel.reason}\n`);
  }
  return report.ok ? 0 : 1;
}

export async function cleanup(engine: Engine, o: { json?: boolean; dryRun?: boolean }): Promise<void> {
  const report = await engine.cleanup({ dryRun: o.dryRun ?? false });
  if (o.json) return printJson(report);
  const r = report as unknown as Record<string, unknown[]>;
  const lines = Object.entries(r).filter(([, v]) => Array.isArray(v)).map(([k, v]) => `${k}: ${v.length ? v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ') : 'none'}`);
  process.stdout.write(`${o.dryRun ? '(dry run) ' : ''}${lines.join('\n')}\n`);
}

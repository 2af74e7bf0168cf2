import { Engine } from '@forkd/engine';
import { promises as fs } from 'node:fs';
const e = new Engine();
const n = Number(process.argv[2] ?? 10);
const sbs = await e.spawn({ tag: 'dev-py', n });
for (const sb of sbs) await sb.eval('python', '1+1', { timeoutMs: 25_000 });
await new Promise((r) => setTimeout(r, 4000));
for (const sb of sbs.slice(0, 4)) {
  const t = await fs.readFile(`/proc/${sb.pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)![1]) / 1024;
  console.log(`pid ${sb.pid} rss ${kb('Rss').toFixed(1)} pss ${kb('Pss').toFixed(1)} priv_dirty ${kb('Private_Dirty').toFixed(1)} shared_clean ${kb('Shared_Clean').toFixed(1)} anon ${kb('Anonymous').toFixed(1)}`);
}
// Biggest private mappings of one child
const smaps = await fs.readFile(`/proc/${sbs[0]!.pid}/smaps`, 'utf8');
const blocks = smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
const rows = blocks.map((b) => ({ name: b.split('\n')[0]!.split(/\s+/).slice(5).join(' ') || '[anon]', range: b.split(' ')[0], pd: Number(/Private_Dirty:\s+(\d+)/.exec(b)?.[1] ?? 0) / 1024, rss: Number(/Rss:\s+(\d+)/.exec(b)?.[1] ?? 0) / 1024 })).sort((a, b) => b.pd - a.pd).slice(0, 8);
for (const r of rows) console.log(`  ${r.pd.toFixed(1)} MiB private_dirty, rss ${r.rss.toFixed(1)}  ${r.name} ${r.range}`);
await Promise.all(sbs.map((s) => s.kill()));

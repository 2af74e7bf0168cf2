/**
 * Issue-9 reliability figures, R6: the state journal against a corrupted middle line, a torn tail
 * and 1 GB of history. Each journal is built in a temp dir, opened RUNS times (rebuilt before each
 * open, since open compacts), and the records kept against those expected and the open time printed.
 * Usage: npm run bench:journal   (RUNS=3 HISTORY_BYTES=1e9 TMPDIR=/tmp); also R6 of npm run bench:reliability.
 *        JOURNAL_MODULE=/path/to/journal.ts npm run bench:journal   (another journal.ts, e.g. an older one)
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface JournalBenchOptions {
  runs: number;
  historyBytes: number;
  /** The journal.ts to measure (default: this tree's). */
  modulePath: string;
}

export const journalOptionsFromEnv = (): JournalBenchOptions => ({
  runs: Number(process.env.RUNS ?? 3),
  historyBytes: Number(process.env.HISTORY_BYTES ?? 1e9),
  modulePath: path.resolve(process.env.JOURNAL_MODULE ?? path.join(here, '..', '..', 'packages/daemon/src/state/journal.ts')),
});

interface AnyJournal {
  all(kind: string): unknown[];
  close(): Promise<void>;
}
export async function journalFigures(o: JournalBenchOptions, out: (s: string) => void): Promise<void> {
  const { runs: RUNS, historyBytes: HISTORY_BYTES, modulePath } = o;
  const mod = (await import(modulePath)) as {
    Journal: { open(file: string): Promise<{ journal: AnyJournal; replay?: unknown; droppedTail?: boolean }> };
    encodeEntry(e: { k: string; id: string; v: unknown }): string;
  };
  const { Journal, encodeEntry } = mod;

  const sandbox = (i: number, v: unknown = { i, pad: 'x'.repeat(400) }) => encodeEntry({ k: 'sandbox', id: `sb-${i}`, v });

  /** Each case writes its file and says how many sandbox records an open should keep. */
  const cases: Array<{ name: string; build(file: string): Promise<number> }> = [
    {
      name: 'corrupted middle line (1 of 1,000)',
      async build(file) {
        const lines = Array.from({ length: 1000 }, (_, i) => sandbox(i));
        lines[500] = lines[500]!.replace('"i":500', '"i":501');
        await fs.writeFile(file, lines.join(''));
        return 999;
      },
    },
    {
      name: 'torn tail (1,000 lines + half a line)',
      async build(file) {
        const last = sandbox(1000);
        await fs.writeFile(file, Array.from({ length: 1000 }, (_, i) => sandbox(i)).join('') + last.slice(0, last.length >> 1));
        return 1000;
      },
    },
    {
      name: `${(HISTORY_BYTES / 1e9).toFixed(1)} GB of history (100 ids put, the odd ones deleted, over and over)`,
      async build(file) {
        const block: string[] = [];
        for (let i = 0; i < 100; i++) block.push(sandbox(i, { i, pad: 'x'.repeat(4096) }));
        for (let i = 1; i < 100; i += 2) block.push(sandbox(i, null));
        const one = Buffer.from(block.join(''));
        const big = Buffer.concat(Array.from({ length: Math.ceil((32 << 20) / one.length) }, () => one));
        const fh = await fs.open(file, 'w');
        try {
          for (let size = 0; size < HISTORY_BYTES; ) size += (await fh.write(big)).bytesWritten;
        } finally {
          await fh.close();
        }
        return 50;
      },
    },
  ];

  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[0]!.toFixed(0)} / ${s[Math.floor(s.length / 2)]!.toFixed(0)} / ${s[s.length - 1]!.toFixed(0)} ms`;
  };

  out(`# node --conditions=source --import tsx bench/reliability-journal.ts  (RUNS=${RUNS} HISTORY_BYTES=${HISTORY_BYTES} JOURNAL_MODULE=${path.relative(process.cwd(), modulePath)})`);
  out(`# ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`);
  out('| journal | records kept / expected | kept aside | open time (min / median / max) |');
  out('|---|---|---|---|');
  for (const c of cases) {
    const times: number[] = [];
    let outcome = '';
    let aside = '';
    for (let run = 0; run < RUNS; run++) {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-bench-journal-'));
      try {
        const file = path.join(dir, 'state.jsonl');
        const expected = await c.build(file);
        const t0 = performance.now();
        try {
          const { journal } = await Journal.open(file);
          times.push(performance.now() - t0);
          outcome = `${journal.all('sandbox').length} / ${expected}`;
          await journal.close();
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          outcome = `open failed: ${err.code ?? ''} ${err.message}`.slice(0, 120);
        }
        aside = (await fs.readdir(dir)).some((f) => f.includes('.corrupt-')) ? 'yes' : 'no';
      } finally {
        await fs.rm(dir, { recursive: true, force: true });
      }
    }
    out(`| ${c.name} | ${outcome} | ${aside} | ${times.length ? stats(times) : 'n/a'} |`);
  }
}

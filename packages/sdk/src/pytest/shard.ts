/**
 * Splitting a collected pytest suite into N shards, balanced: by node id (each shard a contiguous
 * run of tests, sizes differing by at most one, so a module's tests mostly stay together and its
 * module-scoped fixtures are built in few shards) or by file (whole files, the largest first onto
 * the least-loaded shard: LPT). Weights are test counts unless durations from an earlier run are
 * given (seconds per node id; unknown tests weigh the mean of the known ones).
 */
export type ShardMode = 'file' | 'test';

export interface CollectedTest {
  nodeid: string;
  /** The file pytest reported for it (item.location[0]), relative to the root. */
  file: string;
}

export function fileOf(t: CollectedTest): string {
  return t.file || t.nodeid.split('::')[0]!;
}

function weigher(durations: Record<string, number> | undefined): (nodeid: string) => number {
  const known = Object.values(durations ?? {}).filter((d) => Number.isFinite(d) && d >= 0);
  const mean = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 1;
  return (id) => {
    const d = durations?.[id];
    return d !== undefined && Number.isFinite(d) && d >= 0 ? d : mean;
  };
}

/** At most n non-empty shards (fewer when there are fewer units than n), in collection order within each. */
export function shardTests(tests: CollectedTest[], n: number, mode: ShardMode, durations?: Record<string, number>): CollectedTest[][] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`shard count must be a positive integer, not ${n}`);
  if (tests.length === 0) return [];
  const weight = weigher(durations);
  if (mode === 'test' && !durations) {
    const k = Math.min(n, tests.length);
    const out: CollectedTest[][] = [];
    let at = 0;
    for (let i = 0; i < k; i++) {
      const size = Math.floor(tests.length / k) + (i < tests.length % k ? 1 : 0);
      out.push(tests.slice(at, at + size));
      at += size;
    }
    return out;
  }
  // Units: single tests, or whole files; placed largest first onto the least-loaded shard.
  const units: CollectedTest[][] = [];
  if (mode === 'test') units.push(...tests.map((t) => [t]));
  else {
    const byFile = new Map<string, CollectedTest[]>();
    for (const t of tests) {
      const f = fileOf(t);
      if (!byFile.has(f)) byFile.set(f, []);
      byFile.get(f)!.push(t);
    }
    units.push(...byFile.values());
  }
  const k = Math.min(n, units.length);
  const unitWeight = (u: CollectedTest[]) => u.reduce((s, t) => s + weight(t.nodeid), 0);
  const order = units.map((u, i) => ({ u, i, w: unitWeight(u) })).sort((a, b) => b.w - a.w || a.i - b.i);
  const shards = Array.from({ length: k }, () => ({ load: 0, units: [] as Array<{ u: CollectedTest[]; i: number }> }));
  for (const x of order) {
    let best = 0;
    for (let s = 1; s < k; s++) if (shards[s]!.load < shards[best]!.load) best = s;
    shards[best]!.load += x.w;
    shards[best]!.units.push(x);
  }
  // Back into collection order inside each shard.
  return shards.map((s) => s.units.sort((a, b) => a.i - b.i).flatMap((x) => x.u));
}

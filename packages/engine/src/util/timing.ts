/** Small helpers for honest timings (monotonic clock, ms with 0.1 ms resolution). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
export function since(t0: number): number {
  return Math.round((nowMs() - t0) * 10) / 10;
}
export function summarize(values: number[]): { min: number; median: number; max: number; p99: number } {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN, p99: NaN };
  const s = [...values].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
  return { min: s[0]!, median: q(0.5), max: s[s.length - 1]!, p99: q(0.99) };
}

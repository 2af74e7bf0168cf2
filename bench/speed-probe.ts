import { nowMs, since } from '@forkd/engine';

/**
 * Machine speed probe: a fixed amount of CPU and memory work on the host, in ms. This machine's
 * speed swings (a shared VM: the same work took 80 to 350 ms within an hour), and every figure
 * moves with it, so the benches report it before and after.
 */
export function speedProbeMs(): number {
  const t = nowMs();
  const a = new Float64Array(1 << 20);
  for (let r = 0; r < 30; r++) for (let i = 0; i < a.length; i++) a[(i * 7919) & (a.length - 1)]! += i * r;
  return Math.round(since(t));
}

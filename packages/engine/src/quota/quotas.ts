/**
 * Per-child resource limits as the engine takes them (issue 14 §5). Ranges come from protocol's
 * QUOTA_LIMITS; how each is applied is cgroup.ts (memory, CPU, pids, I/O) and the launch wrapper
 * (disk: the QEMU process's file-size limit on its overlay).
 */
import { ForkdError, QUOTA_LIMITS } from '@forkd/protocol';

export interface ChildQuotas {
  memoryMib?: number;
  cpuWeight?: number;
  /** Cores (0.5 = half a core). */
  cpuQuota?: number;
  pidsMax?: number;
  diskMib?: number;
  ioReadBps?: number;
  ioWriteBps?: number;
}

export type QuotaKey = keyof ChildQuotas;

const RANGES: Record<QuotaKey, { min: number; max: number; integer: boolean }> = {
  memoryMib: { ...QUOTA_LIMITS.memoryLimitMib, integer: true },
  cpuWeight: { ...QUOTA_LIMITS.cpuWeight, integer: true },
  cpuQuota: { ...QUOTA_LIMITS.cpuQuota, integer: false },
  pidsMax: { ...QUOTA_LIMITS.pidsMax, integer: true },
  diskMib: { ...QUOTA_LIMITS.diskLimitMib, integer: true },
  ioReadBps: { ...QUOTA_LIMITS.ioBps, integer: true },
  ioWriteBps: { ...QUOTA_LIMITS.ioBps, integer: true },
};

/** The cgroup controller (v1 name) each limit needs; the disk cap needs none. */
export const CONTROLLER_OF: Record<QuotaKey, 'memory' | 'cpu' | 'pids' | 'io' | null> = {
  memoryMib: 'memory',
  cpuWeight: 'cpu',
  cpuQuota: 'cpu',
  pidsMax: 'pids',
  diskMib: null,
  ioReadBps: 'io',
  ioWriteBps: 'io',
};

/** Checks every set limit against its range (FORKD_E_OUT_OF_RANGE names the field). */
export function checkQuotas(q: ChildQuotas): ChildQuotas {
  for (const [k, v] of Object.entries(q) as Array<[QuotaKey, number | undefined]>) {
    if (v === undefined) continue;
    const r = RANGES[k];
    if (!r) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `unknown limit ${k}`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < r.min || v > r.max || (r.integer && !Number.isInteger(v))) {
      throw new ForkdError('FORKD_E_OUT_OF_RANGE', `${k} must be ${r.integer ? 'an integer ' : 'a number '}from ${r.min} to ${r.max}; got ${v}`, { field: k, min: r.min, max: r.max });
    }
  }
  return q;
}

/** The controllers a set of limits needs. */
export function controllersFor(q: ChildQuotas): Set<'memory' | 'cpu' | 'pids' | 'io'> {
  const out = new Set<'memory' | 'cpu' | 'pids' | 'io'>();
  for (const [k, v] of Object.entries(q) as Array<[QuotaKey, number | undefined]>) {
    const c = CONTROLLER_OF[k];
    if (v !== undefined && c) out.add(c);
  }
  return out;
}

export function hasQuotas(q: ChildQuotas | undefined): q is ChildQuotas {
  return !!q && Object.values(q).some((v) => v !== undefined);
}

/**
 * The operator's quota policy: a default and a maximum per limit (forkd serve --default-<field>,
 * --max-<field>). A spawn's value wins over the default; a value over the maximum is a 400; with a
 * maximum but no value and no default, the maximum applies (a maximum means "never unlimited").
 */
import { ForkdError } from '@forkd/protocol';
import { QUOTA_FIELDS, type QuotaField } from '@forkd/api';
import type { ChildQuotas } from '@forkd/engine';

export type QuotaValues = Partial<Record<QuotaField, number>>;
export interface QuotaPolicy {
  defaults: QuotaValues;
  max: QuotaValues;
}
export const NO_QUOTA_POLICY: QuotaPolicy = { defaults: {}, max: {} };

/** The limits one spawn runs with, in wire names. */
export function resolveQuotas(policy: QuotaPolicy, asked: QuotaValues): QuotaValues {
  const out: QuotaValues = {};
  for (const f of QUOTA_FIELDS) {
    const max = policy.max[f];
    const v = asked[f] ?? policy.defaults[f] ?? max;
    if (v === undefined) continue;
    if (max !== undefined && v > max) {
      throw new ForkdError('FORKD_E_OUT_OF_RANGE', `${f}=${v} is over this daemon's maximum of ${max}`, { field: f, max });
    }
    out[f] = v;
  }
  return out;
}

/** Checks an operator's policy at start-up: each default within its maximum. */
export function checkPolicy(policy: QuotaPolicy): QuotaPolicy {
  for (const f of QUOTA_FIELDS) {
    const d = policy.defaults[f];
    const m = policy.max[f];
    if (d !== undefined && m !== undefined && d > m) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--default-${f.replaceAll('_', '-')} ${d} is over --max-${f.replaceAll('_', '-')} ${m}`);
  }
  return policy;
}

/** Wire names to the engine's. */
export function engineQuotas(q: QuotaValues): ChildQuotas {
  const out: ChildQuotas = {};
  if (q.memory_limit_mib !== undefined) out.memoryMib = q.memory_limit_mib;
  if (q.cpu_weight !== undefined) out.cpuWeight = q.cpu_weight;
  if (q.cpu_quota !== undefined) out.cpuQuota = q.cpu_quota;
  if (q.pids_max !== undefined) out.pidsMax = q.pids_max;
  if (q.disk_limit_mib !== undefined) out.diskMib = q.disk_limit_mib;
  if (q.io_read_bps !== undefined) out.ioReadBps = q.io_read_bps;
  if (q.io_write_bps !== undefined) out.ioWriteBps = q.io_write_bps;
  return out;
}

/** The fields of a request body that are quotas (null: not given). */
export function quotasOf(body: Partial<Record<QuotaField, number | null | undefined>>): QuotaValues {
  const out: QuotaValues = {};
  for (const f of QUOTA_FIELDS) {
    const v = body[f];
    if (typeof v === 'number') out[f] = v;
  }
  return out;
}

/**
 * The daemon's egress settings (--default-egress, --egress-allow-private, --egress-resolver) and a
 * sandbox's policy as REST gives it. Enforcement (nft in the child's namespace, the proxy) is the
 * engine's EgressService; `apply` is where the network code hands a networked sandbox to it.
 */
import { ForkdError, parseEgressEntry, resolveEgressPolicy, type EgressRequest } from '@forkd/protocol';

export const DEFAULT_EGRESS = ['deny', 'public'] as const;

export interface EgressSettings {
  defaultEgress: (typeof DEFAULT_EGRESS)[number];
  /** Private ranges guests may reach (CIDRs). */
  allowPrivate: string[];
  /** DNS servers the egress proxy resolves with (ip or ip:port); empty: the host's. */
  resolvers: string[];
  /** Applies a policy to a networked sandbox (by id); null while this daemon runs no networked sandboxes. */
  apply: ((sandboxId: string, request: EgressRequest) => Promise<void>) | null;
}

export interface EgressOptions {
  defaultEgress?: string;
  allowPrivate?: string[];
  resolvers?: string[];
}

/** Checks the operator's flags (a bad one stops the daemon at start with FORKD_E_INVALID_ARGUMENT). */
export function egressSettings(o: EgressOptions = {}): EgressSettings {
  const defaultEgress = o.defaultEgress ?? 'deny';
  if (!(DEFAULT_EGRESS as readonly string[]).includes(defaultEgress)) {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--default-egress must be one of ${DEFAULT_EGRESS.join(', ')}; got ${JSON.stringify(defaultEgress)}`);
  }
  for (const c of o.allowPrivate ?? []) {
    const e = parseEgressEntry(c);
    if (typeof e === 'string' || e.kind !== 'cidr' || e.ports) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--egress-allow-private takes a CIDR without a port; got ${JSON.stringify(c)}${typeof e === 'string' ? `: ${e}` : ''}`);
  }
  for (const r of o.resolvers ?? []) {
    const e = parseEgressEntry(r);
    if (typeof e === 'string' || e.kind !== 'cidr' || (e.family === 4 ? e.prefix !== 32 : e.prefix !== 128)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--egress-resolver takes an address with an optional port; got ${JSON.stringify(r)}`);
  }
  return { defaultEgress: defaultEgress as EgressSettings['defaultEgress'], allowPrivate: o.allowPrivate ?? [], resolvers: o.resolvers ?? [], apply: null };
}

/** The REST fields of a policy. */
export interface EgressWire { allow_internet_access?: boolean | undefined; allow_out?: string[] | undefined; deny_out?: string[] | undefined }

/** What a sandbox's record keeps and its info shows: the policy resolved against the daemon's default. */
export interface EgressRecord { allow_internet_access: boolean; allow_out: string[]; deny_out: string[] }

export const egressRequest = (r: EgressRecord): EgressRequest => ({ allowInternetAccess: r.allow_internet_access, allowOut: r.allow_out, denyOut: r.deny_out });

/** The record for a request's policy fields, or null when it gives none. Throws FORKD_E_INVALID_ARGUMENT. */
export function egressRecord(body: EgressWire, defaultEgress: EgressSettings['defaultEgress']): EgressRecord | null {
  if (body.allow_internet_access === undefined && body.allow_out === undefined && body.deny_out === undefined) return null;
  const request: EgressRequest = {
    ...(body.allow_internet_access !== undefined ? { allowInternetAccess: body.allow_internet_access } : {}),
    allowOut: body.allow_out ?? [],
    denyOut: body.deny_out ?? [],
  };
  const policy = resolveEgressPolicy(request, defaultEgress);
  return { allow_internet_access: policy.allowPublic, allow_out: [...request.allowOut!], deny_out: [...request.denyOut!] };
}

/**
 * A sandbox's egress policy on the wire (spawn fields and PUT /v1/sandboxes/:id/network), validated
 * with protocol's parser: a bad entry is a 400 FORKD_E_INVALID_ARGUMENT naming the entry and why.
 */
import { z } from 'zod';
import { LIMITS, parseEgressEntry } from '@forkd/protocol';

export const EgressEntry = z
  .string()
  .max(LIMITS.egress.maxEntryChars)
  .superRefine((s, ctx) => {
    const e = parseEgressEntry(s);
    if (typeof e === 'string') ctx.addIssue({ code: 'custom', message: e });
  })
  .describe('an IP, CIDR, host name or *.wildcard, with an optional :port or :low-high (IPv6 in brackets); names apply to HTTP (80) and TLS (443)');

const EgressList = z.array(EgressEntry).max(LIMITS.egress.maxEntries);

/** The policy fields (E2B's allow_internet_access and network.allowOut/denyOut, flat). */
export const EgressFields = {
  /** true: public internet (never the host, other children, link-local/metadata or unopened private ranges); false: nothing but allow_out. Default: the daemon's --default-egress. */
  allow_internet_access: z.boolean().optional(),
  /** Allowed destinations. */
  allow_out: EgressList.optional(),
  /** Denied destinations: they win over allow_out (0.0.0.0/0 here means "deny by default", E2B's idiom). */
  deny_out: EgressList.optional(),
};

export const NetworkPolicyBody = z.object(EgressFields).strict();

/** The policy a sandbox runs with (resolved against the daemon's default). */
export const EgressView = z.object({
  allow_internet_access: z.boolean(),
  allow_out: z.array(z.string()),
  deny_out: z.array(z.string()),
});

/**
 * The proxy's decisions, pure: whether a host name may be reached on a port under a child's policy,
 * and whether a resolved address may be connected to (the always-denied set, the operator's private
 * ranges and the policy's deny entries apply to what the proxy resolved, never to what the guest said).
 */
import { nameRuleMatches, normalizeHostName, type EgressEntry, type EgressPolicy } from '@forkd/protocol';
import { isIP } from 'node:net';
import { HARD_DENIED, PRIVATE_RANGES, parseCidr, blockListOf, inBlockList, type Cidr, type FamilyBlockList } from '../ranges.js';
import type { EgressConfig } from '../config.js';

const portOk = (e: EgressEntry, port: number) => !e.ports || (e.ports.from <= port && port <= e.ports.to);

/** May the guest reach `host` (as it named it in SNI/Host/DNS) on `port` (null: DNS, any port)? */
export function nameAllowed(policy: EgressPolicy, rawHost: string, port: number | null): boolean {
  const host = normalizeHostName(rawHost);
  if (host === null) return false;
  const matches = (e: EgressEntry) => e.kind === 'name' && nameRuleMatches(e, host) && (port === null || portOk(e, port));
  // A name denied on some port only still resolves (DNS); its connections on that port are refused.
  if (policy.deny.some((e) => e.kind === 'name' && nameRuleMatches(e, host) && (port === null ? !e.ports : portOk(e, port)))) return false;
  return policy.allowPublic || policy.allow.some(matches);
}

export interface AddressRules { hard: FamilyBlockList; private: FamilyBlockList; open: FamilyBlockList }

export function addressRulesOf(config: EgressConfig): AddressRules {
  const cidrs = (l: readonly string[]) => l.map(parseCidr);
  return {
    hard: blockListOf(cidrs([...HARD_DENIED, ...config.hostAddresses, ...config.childPools, config.proxy.addr])),
    private: blockListOf(cidrs(PRIVATE_RANGES)),
    open: blockListOf(cidrs(config.allowPrivate)),
  };
}

/** May the proxy connect to `ip`:`port` for this child? */
export function addressAllowed(rules: AddressRules, policy: EgressPolicy, ip: string, port: number): boolean {
  if (isIP(ip) === 0 || inBlockList(rules.hard, ip)) return false;
  if (inBlockList(rules.private, ip) && !inBlockList(rules.open, ip)) return false;
  return !policy.deny.some((e) => e.kind === 'cidr' && portOk(e, port) && inBlockList(blockListOf([e as Cidr]), ip));
}

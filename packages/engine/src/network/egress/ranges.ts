/**
 * Address ranges a guest never reaches whatever its policy, and the private ranges it reaches only
 * where the operator allows them (--egress-allow-private). Shared by the nft rules and the proxy.
 */
import { BlockList, isIP } from 'node:net';
import { parseEgressEntry, type EgressEntry } from '@forkd/protocol';

/** Never reachable: loopback, link-local and cloud metadata, "this network", multicast, reserved, v4-mapped/NAT64 forms. */
export const HARD_DENIED = [
  '0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4',
  '::/128', '::1/128', 'fe80::/10', 'ff00::/8', '::ffff:0:0/96', '64:ff9b::/96',
] as const;

/** Private and shared ranges: denied unless an operator-allowed range covers the address. */
export const PRIVATE_RANGES = ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16', '198.18.0.0/15', 'fc00::/7'] as const;

export type Cidr = Extract<EgressEntry, { kind: 'cidr' }>;

/** A CIDR or bare IP to its parsed form; throws on anything else (operator input is checked at start-up). */
export function parseCidr(text: string): Cidr {
  const e = parseEgressEntry(isIP(text) === 6 ? `[${text}]` : text);
  if (typeof e === 'string' || e.kind !== 'cidr' || e.ports) throw new Error(`"${text}" is not an address or CIDR${typeof e === 'string' ? `: ${e}` : ''}`);
  return e;
}

export const cidrText = (c: Cidr) => `${c.addr}/${c.prefix}`;

/**
 * One BlockList per family: Node's BlockList matches IPv4 addresses against IPv4-mapped IPv6
 * subnets (::ffff:0:0/96 would cover every IPv4 address), so the families are kept apart.
 */
export interface FamilyBlockList { v4: BlockList; v6: BlockList }

export function blockListOf(cidrs: readonly Cidr[]): FamilyBlockList {
  const lists = { v4: new BlockList(), v6: new BlockList() };
  for (const c of cidrs) (c.family === 4 ? lists.v4 : lists.v6).addSubnet(c.addr, c.prefix, c.family === 4 ? 'ipv4' : 'ipv6');
  return lists;
}

export function inBlockList(lists: FamilyBlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return lists.v4.check(ip, 'ipv4');
  return family === 6 && lists.v6.check(ip, 'ipv6');
}

/**
 * The nftables ruleset of one child namespace, as a pure function of its plumbing, its policy and the
 * operator's settings. One table per namespace (its cost does not grow with the number of children),
 * replaced in one `nft -f` transaction. deny wins over allow; the hard-denied set, the host, the child
 * pool and the private ranges (unless opened by the operator) are refused before any allow rule.
 */
import type { EgressEntry, EgressPolicy } from '@forkd/protocol';
import type { ChildNetwork } from '../types.js';
import type { EgressConfig } from './config.js';
import { HARD_DENIED, PRIVATE_RANGES, parseCidr, cidrText, type Cidr } from './ranges.js';

export const EGRESS_TABLE = 'forkd_egress';

/** Whether guest TCP 80/443 goes through the name-checking proxy. */
export function usesProxy(p: EgressPolicy): boolean {
  const names = (list: EgressEntry[]) => list.some((e) => e.kind === 'name');
  return names(p.allow) || (p.allowPublic && names(p.deny));
}

/** Whether guest DNS is answered by the proxy's forwarder (names are allowed). */
export function usesDns(p: EgressPolicy): boolean {
  return p.allowPublic || p.allow.some((e) => e.kind === 'name');
}

const q = (iface: string) => JSON.stringify(iface);

function setDecl(name: string, type: 'ipv4_addr' | 'ipv6_addr', cidrs: Cidr[]): string {
  const elements = cidrs.length ? ` elements = { ${cidrs.map(cidrText).join(', ')} };` : '';
  return `  set ${name} { type ${type}; flags interval; auto-merge;${elements} }`;
}

function split(texts: readonly string[]): { v4: Cidr[]; v6: Cidr[] } {
  const all = texts.map(parseCidr);
  return { v4: all.filter((c) => c.family === 4), v6: all.filter((c) => c.family === 6) };
}

/** `ip daddr X th dport P` for one address entry. */
function match(e: Cidr): string {
  const addr = `${e.family === 4 ? 'ip' : 'ip6'} daddr ${cidrText(e)}`;
  if (!e.ports) return addr;
  const ports = e.ports.from === e.ports.to ? `${e.ports.from}` : `${e.ports.from}-${e.ports.to}`;
  return `${addr} meta l4proto { tcp, udp } th dport ${ports}`;
}

const coversWebPorts = (e: Cidr) => !e.ports || [80, 443].some((p) => e.ports!.from <= p && p <= e.ports!.to);

export function renderEgressRuleset(net: ChildNetwork, policy: EgressPolicy, config: EgressConfig): string {
  const tap = q(net.tap);
  const { addr: proxy, httpPort, tlsPort, dnsPort } = config.proxy;
  const hard = split([...HARD_DENIED, ...config.hostAddresses, ...config.childPools, proxy]);
  const priv = split(PRIVATE_RANGES);
  const open = split(config.allowPrivate);
  const allow = policy.allow.filter((e): e is Cidr => e.kind === 'cidr');
  const deny = policy.deny.filter((e): e is Cidr => e.kind === 'cidr');
  const proxied = usesProxy(policy);
  const dns = usesDns(policy);
  const reject = 'reject with icmpx admin-prohibited';

  const prerouting = [
    ...(dns ? [`    iifname ${tap} meta l4proto { tcp, udp } th dport 53 dnat ip to ${proxy}:${dnsPort}`] : []),
    // Addresses the policy allows by CIDR are reached directly; the rest of 80/443 goes to the proxy.
    ...(proxied ? allow.filter(coversWebPorts).map((e) => `    iifname ${tap} ${match(e)} return`) : []),
    ...(proxied ? [`    iifname ${tap} tcp dport 80 dnat ip to ${proxy}:${httpPort}`, `    iifname ${tap} tcp dport 443 dnat ip to ${proxy}:${tlsPort}`] : []),
  ];
  const proxyPorts = [...(proxied ? [httpPort, tlsPort] : []), ...(dns ? [dnsPort] : [])];
  const forward = [
    '    ct state established,related accept',
    '    ct state invalid drop',
    `    iifname != ${tap} drop`,
    ...(proxyPorts.length ? [`    ct status dnat ip daddr ${proxy} meta l4proto { tcp, udp } th dport { ${proxyPorts.join(', ')} } accept`] : []),
    `    ip daddr @hard_deny4 ${reject}`,
    `    ip6 daddr @hard_deny6 ${reject}`,
    `    ip daddr @private4 ip daddr != @open_private4 ${reject}`,
    `    ip6 daddr @private6 ip6 daddr != @open_private6 ${reject}`,
    ...deny.map((e) => `    ${match(e)} ${reject}`),
    ...allow.map((e) => `    ${match(e)} accept`),
    ...(policy.allowPublic ? ['    meta nfproto { ipv4, ipv6 } accept'] : []),
    `    ${reject}`,
  ];
  return [
    // Create-then-delete makes the replacement one transaction whether or not the table exists.
    `table inet ${EGRESS_TABLE}`,
    `delete table inet ${EGRESS_TABLE}`,
    `table inet ${EGRESS_TABLE} {`,
    setDecl('hard_deny4', 'ipv4_addr', hard.v4),
    setDecl('hard_deny6', 'ipv6_addr', hard.v6),
    setDecl('private4', 'ipv4_addr', priv.v4),
    setDecl('private6', 'ipv6_addr', priv.v6),
    setDecl('open_private4', 'ipv4_addr', open.v4),
    setDecl('open_private6', 'ipv6_addr', open.v6),
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...prerouting,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...forward,
    '  }',
    // The guest reaches nothing of the child namespace itself (replies to its own traffic aside).
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    iifname ${tap} ct state established,related accept`,
    `    iifname ${tap} ${reject}`,
    '  }',
    '}',
    '',
  ].join('\n');
}

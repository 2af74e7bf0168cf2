/**
 * Egress policy entries, declared once: the REST schemas validate with parseEgressEntry, the engine
 * turns the parsed entries into nftables rules and the egress proxy's name rules.
 *
 * An entry is one string: an IP (`1.2.3.4`, `2001:db8::1`), a CIDR (`10.0.0.0/8`), a host name
 * (`example.com`) or a wildcard (`*.example.com`: every subdomain, not the apex), each with an optional
 * port or port range (`1.2.3.0/24:443`, `[2001:db8::/32]:8000-8100`, `example.com:443`). Host names are
 * enforced on HTTP (80) and TLS (443) only, where the proxy can read the name the guest asks for.
 */
import { isIP } from 'node:net';
import { LIMITS } from './limits.js';
import { ForkdError } from './errors.js';

export interface PortRange { from: number; to: number }

export type EgressEntry =
  | { kind: 'cidr'; family: 4 | 6; addr: string; prefix: number; ports: PortRange | null; text: string }
  | { kind: 'name'; name: string; wildcard: boolean; ports: PortRange | null; text: string };

/** The ports host-name rules can be enforced on (the proxy reads HTTP Host and TLS SNI). */
export const EGRESS_NAME_PORTS = [80, 443] as const;

/** E2B's constant for "everything": as a deny entry it means "deny by default" (see resolveEgressPolicy). */
export const ALL_TRAFFIC = '0.0.0.0/0';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS name as the proxy and the policy compare it: lowercase, no trailing dot; null if invalid. */
export function normalizeHostName(raw: string): string | null {
  const name = raw.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > LIMITS.egress.maxNameChars) return null;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  // All-numeric dotted strings are (broken) addresses, not names.
  if (/^[0-9.]+$/.test(name)) return null;
  return name;
}

function parsePorts(text: string): PortRange | string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (!m) return `bad port "${text}" (a number or a range like 8000-8100)`;
  const from = Number(m[1]);
  const to = m[2] === undefined ? from : Number(m[2]);
  if (from < 1 || to > 65535 || from > to) return `bad port range "${text}" (1-65535, low-high)`;
  return { from, to };
}

/** IPv4 to a 32-bit number (valid input assumed). */
export function ipv4ToInt(addr: string): number {
  return addr.split('.').reduce((n, p) => n * 256 + Number(p), 0);
}

/** IPv6 to a BigInt (valid input assumed, no zone). */
export function ipv6ToBigInt(addr: string): bigint {
  let text = addr;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = ipv4ToInt(v4[1]!);
    text = text.slice(0, -v4[1]!.length) + `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) + BigInt(parseInt(g, 16)), 0n);
}

function hostBitsSet(family: 4 | 6, addr: string, prefix: number): boolean {
  if (family === 4) {
    const hostBits = 32 - prefix;
    return hostBits > 0 && ipv4ToInt(addr) % 2 ** hostBits !== 0;
  }
  const hostBits = BigInt(128 - prefix);
  return hostBits > 0n && (ipv6ToBigInt(addr) & ((1n << hostBits) - 1n)) !== 0n;
}

function parseAddress(text: string, ports: PortRange | null, original: string): EgressEntry | string {
  const [addr, prefixText, extra] = text.split('/');
  if (extra !== undefined || addr === undefined) return `"${original}" is not an address or CIDR`;
  const family = isIP(addr);
  if (family !== 4 && family !== 6) return `"${original}" is not an IP address, CIDR or host name`;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return `bad prefix length in "${original}" (0-${max})`;
    prefix = Number(prefixText);
  }
  if (hostBitsSet(family, addr, prefix)) return `"${original}" has host bits set beyond /${prefix}`;
  return { kind: 'cidr', family, addr: addr.toLowerCase(), prefix, ports, text: original };
}

/** Parses one allow_out / deny_out entry; a string is the reason it is invalid. */
export function parseEgressEntry(raw: string): EgressEntry | string {
  const text = raw.trim();
  if (text.length === 0) return 'empty egress entry';
  if (text.length > LIMITS.egress.maxEntryChars) return `egress entry longer than ${LIMITS.egress.maxEntryChars} characters`;
  // [v6 or v6/prefix]:port
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(text);
  if (bracketed) {
    const ports = bracketed[2] === undefined ? null : parsePorts(bracketed[2]);
    if (typeof ports === 'string') return `${ports} in "${text}"`;
    const entry = parseAddress(bracketed[1]!, ports, text);
    if (typeof entry !== 'string' && (entry.kind !== 'cidr' || entry.family !== 6)) return `brackets are for IPv6 only: "${text}"`;
    return entry;
  }
  // A bare IPv6 address or CIDR (two or more colons) takes no port without brackets.
  if ((text.match(/:/g) ?? []).length >= 2) return parseAddress(text, null, text);
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  let ports: PortRange | null = null;
  if (colon >= 0) {
    const p = parsePorts(text.slice(colon + 1));
    if (typeof p === 'string') return `${p} in "${text}"`;
    ports = p;
  }
  if (/^[0-9./]+$/.test(host)) return parseAddress(host, ports, text);
  const wildcard = host.startsWith('*.');
  const name = normalizeHostName(wildcard ? host.slice(2) : host);
  if (name === null) return `"${text}" is not an IP address, CIDR or host name`;
  if (ports && !(ports.from === ports.to && (EGRESS_NAME_PORTS as readonly number[]).includes(ports.from))) {
    return `host-name rules apply to HTTP (80) and TLS (443) only: "${text}"; use an address or CIDR for other ports`;
  }
  return { kind: 'name', name, wildcard, ports, text };
}

/** Parses a list; throws nothing, returns the entries or every reason the list is invalid. */
export function parseEgressList(list: readonly string[]): { entries: EgressEntry[]; errors: string[] } {
  const entries: EgressEntry[] = [];
  const errors: string[] = [];
  if (list.length > LIMITS.egress.maxEntries) errors.push(`at most ${LIMITS.egress.maxEntries} egress entries`);
  for (const raw of list.slice(0, LIMITS.egress.maxEntries)) {
    const e = parseEgressEntry(raw);
    if (typeof e === 'string') errors.push(e);
    else entries.push(e);
  }
  return { entries, errors };
}

/** Whether a name rule matches a (normalised) host name. */
export function nameRuleMatches(rule: { name: string; wildcard: boolean }, host: string): boolean {
  return rule.wildcard ? host.endsWith(`.${rule.name}`) : host === rule.name;
}

/** What a sandbox asks for (REST's shape, E2B's semantics); every field optional. */
export interface EgressRequest {
  /** true: public internet allowed (minus the always-denied set); false: deny by default. Default: the daemon's --default-egress. */
  allowInternetAccess?: boolean;
  allowOut?: readonly string[];
  denyOut?: readonly string[];
}

/** The policy the engine enforces, resolved from a request and the daemon's default. */
export interface EgressPolicy {
  /** Public internet allowed by default (the always-denied set still applies). */
  allowPublic: boolean;
  allow: EgressEntry[];
  /** deny wins over allow (both for addresses and for names). */
  deny: EgressEntry[];
}

const isDenyAll = (e: EgressEntry) => e.kind === 'cidr' && e.prefix === 0 && e.ports === null;

/**
 * Resolves a request against the daemon default. A deny entry for everything (0.0.0.0/0 or ::/0, no
 * port, E2B's ALL_TRAFFIC) means "deny by default" rather than a rule that beats allow_out, so E2B's
 * idiom `denyOut: [ALL_TRAFFIC], allowOut: [...]` keeps its meaning; every other deny entry wins.
 * Invalid entries throw (callers validate at the API first, so this is the engine's own guard).
 */
export function resolveEgressPolicy(req: EgressRequest, defaultEgress: 'deny' | 'public'): EgressPolicy {
  const allow = parseEgressList(req.allowOut ?? []);
  const deny = parseEgressList(req.denyOut ?? []);
  const errors = [...allow.errors, ...deny.errors];
  if (errors.length) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid egress policy: ${errors.join('; ')}`, { errors });
  const denyAll = deny.entries.some(isDenyAll);
  const allowPublic = denyAll ? false : (req.allowInternetAccess ?? defaultEgress === 'public');
  return { allowPublic, allow: allow.entries, deny: deny.entries.filter((e) => !isDenyAll(e)) };
}

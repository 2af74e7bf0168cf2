import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveEgressPolicy } from '@forkd/protocol';
import { renderEgressRuleset, usesProxy, usesDns } from './nft-rules.js';
import { DEFAULT_PROXY, type EgressConfig } from './config.js';
import type { ChildNetwork } from '../types.js';

const net: ChildNetwork = { netns: 'n', netnsPath: '/run/netns/n', guestAddr: '172.16.0.2', gatewayAddr: '172.16.0.1', tap: 'tap0', vethChild: 'vc', vethUplink: 'vu', hostAddr: '10.200.0.2', uplinkNetns: null };
const config: EgressConfig = { defaultEgress: 'deny', childPools: ['10.200.0.0/16'], hostAddresses: ['203.0.113.7', '10.77.0.1'], allowPrivate: ['10.77.0.0/24'], proxy: DEFAULT_PROXY, resolvers: [] };
const render = (req: Parameters<typeof resolveEgressPolicy>[0], def: 'deny' | 'public' = 'deny') => renderEgressRuleset(net, resolveEgressPolicy(req, def), config);
const lines = (s: string) => s.split('\n').map((l) => l.trim());
const indexOf = (s: string, needle: string) => lines(s).findIndex((l) => l.includes(needle));

test('default deny: no accept rule for new guest traffic, no proxy, no DNS', () => {
  const r = render({});
  assert.match(r, /chain forward \{\n\s+type filter hook forward priority filter; policy drop;/);
  assert.ok(!/dnat/.test(r));
  const forward = r.slice(r.indexOf('chain forward'), r.indexOf('chain input'));
  assert.deepEqual(lines(forward).filter((l) => l.endsWith(' accept')), ['ct state established,related accept']);
  assert.equal(lines(forward).at(-3), 'reject with icmpx admin-prohibited');
});

test('the always-denied set holds the host, the child pool, link-local and the proxy address, and precedes every allow', () => {
  const r = render({ allowInternetAccess: true, allowOut: ['203.0.113.0/24'] });
  const hard = lines(r).find((l) => l.startsWith('set hard_deny4'))!;
  for (const c of ['203.0.113.7/32', '10.200.0.0/16', '169.254.0.0/16', '127.0.0.0/8', '169.254.255.254/32']) assert.ok(hard.includes(c), c);
  assert.ok(indexOf(r, 'ip daddr @hard_deny4') < indexOf(r, 'ip daddr 203.0.113.0/24 accept'));
  assert.ok(indexOf(r, 'ip daddr @private4 ip daddr != @open_private4') < indexOf(r, 'meta nfproto { ipv4, ipv6 } accept'));
  assert.ok(lines(r).find((l) => l.startsWith('set open_private4'))!.includes('10.77.0.0/24'));
});

test('deny_out wins: deny rules come before allow rules; ports become th dport', () => {
  const r = render({ allowOut: ['8.8.8.0/24'], denyOut: ['8.8.8.8:53'] });
  const d = indexOf(r, 'ip daddr 8.8.8.8/32 meta l4proto { tcp, udp } th dport 53 reject');
  assert.ok(d > 0 && d < indexOf(r, 'ip daddr 8.8.8.0/24 accept'));
});

test('names send guest 80/443 to the proxy and 53 to its forwarder; CIDR-allowed addresses bypass it', () => {
  const r = render({ allowOut: ['example.com', '10.77.0.0/24:8080', '10.77.0.5:443'] });
  assert.ok(usesProxy(resolveEgressPolicy({ allowOut: ['example.com'] }, 'deny')));
  assert.ok(r.includes('tcp dport 443 dnat ip to 169.254.255.254:15443'));
  assert.ok(r.includes('tcp dport 80 dnat ip to 169.254.255.254:15080'));
  assert.ok(r.includes('th dport 53 dnat ip to 169.254.255.254:15053'));
  assert.ok(indexOf(r, 'ip daddr 10.77.0.5/32 meta l4proto { tcp, udp } th dport 443 return') < indexOf(r, 'tcp dport 443 dnat'));
  assert.equal(indexOf(r, '10.77.0.0/24 meta l4proto { tcp, udp } th dport 8080 return'), -1, 'a rule not covering 80/443 needs no bypass');
  assert.ok(r.includes('ct status dnat ip daddr 169.254.255.254 meta l4proto { tcp, udp } th dport { 15080, 15443, 15053 } accept'));
});

test('public: DNS forwarded, proxy only when names are denied', () => {
  const pub = resolveEgressPolicy({}, 'public');
  assert.ok(usesDns(pub) && !usesProxy(pub));
  assert.ok(usesProxy(resolveEgressPolicy({ denyOut: ['*.evil.example'] }, 'public')));
  assert.ok(!usesDns(resolveEgressPolicy({ allowOut: ['1.2.3.4'] }, 'deny')));
});

test('the guest reaches nothing in its own namespace; the table is replaced in one transaction', () => {
  const r = render({});
  assert.deepEqual(lines(r).slice(0, 3), ['table inet forkd_egress', 'delete table inet forkd_egress', 'table inet forkd_egress {']);
  assert.ok(r.includes('iifname "tap0" reject with icmpx admin-prohibited'));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEgressEntry, resolveEgressPolicy, nameRuleMatches, ipv6ToBigInt, ForkdError } from './index.js';

const ok = (s: string) => {
  const e = parseEgressEntry(s);
  assert.equal(typeof e, 'object', `${s}: ${String(e)}`);
  return e as Exclude<ReturnType<typeof parseEgressEntry>, string>;
};
const cidr = (s: string) => {
  const e = ok(s);
  assert.equal(e.kind, 'cidr');
  return e as Extract<typeof e, { kind: 'cidr' }>;
};
const bad = (s: string, re: RegExp) => {
  const e = parseEgressEntry(s);
  assert.equal(typeof e, 'string', `${s} should be refused`);
  assert.match(e as string, re);
};

test('addresses, CIDRs and ports parse', () => {
  assert.deepEqual(ok('1.2.3.4'), { kind: 'cidr', family: 4, addr: '1.2.3.4', prefix: 32, ports: null, text: '1.2.3.4' });
  assert.deepEqual(ok('10.0.0.0/8:443'), { kind: 'cidr', family: 4, addr: '10.0.0.0', prefix: 8, ports: { from: 443, to: 443 }, text: '10.0.0.0/8:443' });
  assert.equal(cidr('0.0.0.0/0').prefix, 0);
  assert.equal(cidr('2001:db8::/32').family, 6);
  assert.deepEqual(ok('[2001:db8::1]:8000-8100').ports, { from: 8000, to: 8100 });
  assert.equal(cidr('::/0').prefix, 0);
});

test('names and wildcards parse, lowercased; name ports are 80 or 443 only', () => {
  assert.deepEqual(ok('Example.COM'), { kind: 'name', name: 'example.com', wildcard: false, ports: null, text: 'Example.COM' });
  assert.equal(ok('*.pypi.org:443').kind, 'name');
  assert.equal((ok('*.pypi.org') as { wildcard: boolean }).wildcard, true);
  bad('example.com:22', /80\) and TLS \(443\) only/);
  bad('example.com:80-443', /only/);
});

test('bad entries have clear reasons', () => {
  bad('', /empty/);
  bad('1.2.3.4/24', /host bits/);
  bad('1.2.3', /not an IP address/);
  bad('300.1.1.1', /not an IP address/);
  bad('1.2.3.0/33', /prefix/);
  bad('1.2.3.4:0', /port/);
  bad('1.2.3.4:70000', /port/);
  bad('1.2.3.4:9-8', /port range/);
  bad('[1.2.3.4]:80', /IPv6 only/);
  bad('exa mple.com', /not an IP address, CIDR or host name/);
  bad('*.', /not an IP/);
  bad('a..b', /not an IP/);
  bad('-a.com', /not an IP/);
  bad('x'.repeat(400), /longer than/);
});

test('wildcards match subdomains, not the apex', () => {
  const rule = { name: 'example.com', wildcard: true };
  assert.ok(nameRuleMatches(rule, 'a.example.com'));
  assert.ok(nameRuleMatches(rule, 'a.b.example.com'));
  assert.ok(!nameRuleMatches(rule, 'example.com'));
  assert.ok(!nameRuleMatches(rule, 'badexample.com'));
  assert.ok(nameRuleMatches({ name: 'example.com', wildcard: false }, 'example.com'));
});

test('policy resolution: default, allowInternetAccess, deny-all means default deny', () => {
  assert.equal(resolveEgressPolicy({}, 'deny').allowPublic, false);
  assert.equal(resolveEgressPolicy({}, 'public').allowPublic, true);
  assert.equal(resolveEgressPolicy({ allowInternetAccess: false }, 'public').allowPublic, false);
  const p = resolveEgressPolicy({ allowInternetAccess: true, denyOut: ['0.0.0.0/0', '1.2.3.4'], allowOut: ['8.8.8.8'] }, 'public');
  assert.equal(p.allowPublic, false);
  assert.deepEqual(p.deny.map((e) => e.text), ['1.2.3.4']);
  assert.throws(() => resolveEgressPolicy({ allowOut: ['nope nope'] }, 'deny'), (e) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT');
});

test('ipv6 to bigint', () => {
  assert.equal(ipv6ToBigInt('::1'), 1n);
  assert.equal(ipv6ToBigInt('fe80::'), 0xfe80n << 112n);
  assert.equal(ipv6ToBigInt('::ffff:1.2.3.4'), 0xffff01020304n);
});

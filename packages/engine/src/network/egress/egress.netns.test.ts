/**
 * The egress policy against real namespaces, veths, nftables and the proxy process (no VM: a guest
 * namespace stands in for the VM's side of the tap). Traffic stays inside namespaces this test makes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EgressService } from './service.js';
import { DEFAULT_PROXY } from './config.js';
import { listRuleset } from './apply-rules.js';
import { EgressTestNet, TEST_HOST, POOL, DAEMON_PORT, OTHER_CHILD_PORT } from './testing/fixture.js';
import type { ChildNetwork } from '../types.js';
import type { Probe, ProbeResult } from './testing/probe.js';

const canRun = process.getuid?.() === 0 && existsSync('/usr/sbin/nft');
const prefix = `eg${(process.pid % 10000).toString(36)}${Math.floor(Math.random() * 36 * 36).toString(36)}`;
let tn: EgressTestNet;
let egress: EgressService;
let child: ChildNetwork & { guestNs: string };

const skip = canRun ? false : 'needs root and nft (apt nftables)';

before(async () => {
  if (!canRun) return;
  tn = await EgressTestNet.create(prefix);
  child = await tn.addChild(1, { guest: true });
  await tn.addChild(2, { guest: false, listen: true });
  egress = await EgressService.start(
    { defaultEgress: 'deny', childPools: [POOL], hostAddresses: [], allowPrivate: [TEST_HOST.range], proxy: DEFAULT_PROXY, resolvers: [TEST_HOST.real] },
    { uplinkNetns: tn.uplink, controlSocket: path.join(os.tmpdir(), `${prefix}-egress.sock`) },
  );
});

after(async () => {
  await egress?.stop();
  await tn?.destroy();
  if (tn) assert.deepEqual(await tn.leftovers(), []);
});

const forbidden: Probe[] = [
  { kind: 'http', addr: TEST_HOST.real, host: 'allowed.test' },
  { kind: 'tcp', addr: TEST_HOST.uplinkSide, port: DAEMON_PORT },
  { kind: 'tcp', addr: '10.200.0.5', port: DAEMON_PORT },
  { kind: 'tcp', addr: DEFAULT_PROXY.addr, port: DAEMON_PORT },
  { kind: 'http', addr: TEST_HOST.metadata, host: 'meta' },
  { kind: 'tcp', addr: '10.200.0.10', port: OTHER_CHILD_PORT },
  { kind: 'tcp', addr: '172.16.0.1', port: 22 },
];
const texts = (rs: ProbeResult[]) => rs.map((r) => (r.ok ? r.text.split('\n').at(-2) ?? r.text : r.text));

test('default policy: the guest reaches no test host, not the host, the daemon port, another child or 169.254.169.254', { skip }, async () => {
  await egress.applyEgress(child, {});
  const rs = await tn.probe(child.guestNs, [...forbidden, { kind: 'dns', addr: TEST_HOST.real, name: 'allowed.test' }]);
  assert.deepEqual(rs.map((r) => r.ok), rs.map(() => false), JSON.stringify(texts(rs)));
});

test('control: with the table removed the same probes do reach the test host, the host and the other child', { skip }, async () => {
  // Proves the probes above could succeed: only the egress table stood in the way.
  await egress.applyEgress(child, {});
  await tn.probe(child.guestNs, []);
  const { runTool } = await import('../../qemu/tools.js');
  await runTool('nsenter', [`--net=${child.netnsPath}`, 'nft', 'delete', 'table', 'inet', 'forkd_egress']);
  const rs = await tn.probe(child.guestNs, [forbidden[0]!, forbidden[1]!, forbidden[4]!, forbidden[5]!]);
  assert.deepEqual(rs.map((r) => r.ok), [true, true, true, true], JSON.stringify(texts(rs)));
});

test('allowed by CIDR: the test host is reached directly, nothing else; the always-denied set still wins', { skip }, async () => {
  await egress.applyEgress(child, { allowOut: [`${TEST_HOST.real}/32`] });
  const rs = await tn.probe(child.guestNs, [{ kind: 'http', addr: TEST_HOST.real, host: 'x' }, { kind: 'tcp', addr: TEST_HOST.real, port: 8080 }, { kind: 'http', addr: TEST_HOST.other, host: 'x' }, ...forbidden.slice(1)]);
  assert.deepEqual(rs.map((r) => r.ok), [true, true, ...rs.slice(2).map(() => false)], JSON.stringify(texts(rs)));
  assert.match(rs[0]!.text, /real host=x/);
  // Public internet does not open the host, other children, link-local or unopened private ranges either.
  await egress.applyEgress(child, { allowInternetAccess: true });
  const pub = await tn.probe(child.guestNs, forbidden.slice(1));
  assert.deepEqual(pub.map((r) => r.ok), pub.map(() => false), JSON.stringify(texts(pub)));
  // deny_out wins over allow_out (and over public).
  await egress.applyEgress(child, { allowInternetAccess: true, allowOut: [`${TEST_HOST.real}/32`], denyOut: [`${TEST_HOST.real}:8080`] });
  const d = await tn.probe(child.guestNs, [{ kind: 'tcp', addr: TEST_HOST.real, port: 8080 }, { kind: 'http', addr: TEST_HOST.real, host: 'x' }]);
  assert.deepEqual(d.map((r) => r.ok), [false, true], JSON.stringify(texts(d)));
});

test('allowed by name: HTTP (Host) and TLS (SNI) through the proxy, DNS for allowed names only', { skip }, async () => {
  await egress.applyEgress(child, { allowOut: ['allowed.test', '*.wild.test:443'] });
  const rs = await tn.probe(child.guestNs, [
    { kind: 'http', addr: TEST_HOST.real, host: 'allowed.test' },
    { kind: 'tls', addr: TEST_HOST.real, servername: 'allowed.test' },
    { kind: 'tls', addr: TEST_HOST.real, servername: 'sub.wild.test' },
    { kind: 'dns', addr: TEST_HOST.real, name: 'allowed.test' },
    { kind: 'dns', addr: '8.8.8.8', name: 'allowed.test' }, // redirected to the forwarder: never leaves
    { kind: 'dns', addr: TEST_HOST.real, name: 'other.test' },
    { kind: 'http', addr: TEST_HOST.real, host: 'other.test' },
    { kind: 'tls', addr: TEST_HOST.real, servername: 'other.test' },
    { kind: 'http', addr: TEST_HOST.real, host: 'sub.wild.test' }, // the wildcard is for 443 only
    { kind: 'tcp', addr: TEST_HOST.real, port: 8080 }, // names open 80/443, not other ports
  ]);
  const t = texts(rs);
  assert.deepEqual(rs.map((r) => r.ok).slice(0, 5), [true, true, true, true, true], JSON.stringify(t));
  assert.match(rs[0]!.text, /real host=allowed.test/);
  assert.match(rs[1]!.text, /real-tls/);
  assert.equal(rs[3]!.text, TEST_HOST.real);
  assert.equal(rs[4]!.text, TEST_HOST.real);
  assert.equal(rs[5]!.text, 'rcode 3');
  assert.match(rs[6]!.text, /403 Forbidden[\s\S]*other.test is not allowed/);
  assert.ok(!rs[7]!.ok && !/other-tls/.test(rs[7]!.text));
  assert.match(rs[8]!.text, /403/);
  assert.ok(!rs[9]!.ok);
});

test('a name rule is not fooled by a forged DNS answer: the proxy resolves the name itself', { skip }, async () => {
  await egress.applyEgress(child, { allowOut: ['allowed.test', 'hostside.test', 'meta.test'] });
  const rs = await tn.probe(child.guestNs, [
    // The guest "resolved" allowed.test to the other test address (as a forged answer would make it).
    { kind: 'http', addr: TEST_HOST.other, host: 'allowed.test' },
    { kind: 'tls', addr: TEST_HOST.other, servername: 'allowed.test' },
    // ... or to an address it may never reach: the connection still goes to the real address.
    { kind: 'http', addr: '10.200.0.10', host: 'allowed.test' },
    // An allowed name whose real address is the host or metadata: refused by the proxy.
    { kind: 'http', addr: TEST_HOST.real, host: 'hostside.test' },
    { kind: 'http', addr: TEST_HOST.real, host: 'meta.test' },
  ]);
  assert.match(rs[0]!.text, /real host=allowed.test/, JSON.stringify(texts(rs)));
  assert.match(rs[1]!.text, /real-tls/);
  assert.match(rs[2]!.text, /real host=allowed.test/);
  assert.match(rs[3]!.text, /403[\s\S]*denied address/);
  assert.match(rs[4]!.text, /403[\s\S]*denied address/);
});

test('updateNetwork swaps the rules live; removal forgets the child; its table goes with its namespace', { skip }, async () => {
  await egress.applyEgress(child, { allowOut: [`${TEST_HOST.real}/32`] });
  const probe: Probe[] = [{ kind: 'http', addr: TEST_HOST.real, host: 'x' }];
  assert.equal((await tn.probe(child.guestNs, probe))[0]!.ok, true);
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await egress.applyEgress(child, i % 2 ? { allowOut: [`${TEST_HOST.real}/32`] } : {});
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`# applyEgress per child: min ${times[0]!.toFixed(1)} / median ${times[5]!.toFixed(1)} / max ${times[9]!.toFixed(1)} ms`);
  assert.equal((await tn.probe(child.guestNs, probe))[0]!.ok, true, 'last applied (i=9) allows');
  await egress.applyEgress(child, {});
  assert.equal((await tn.probe(child.guestNs, probe))[0]!.ok, false);

  assert.ok((await egress.state()).children.includes(child.hostAddr));
  assert.ok(await listRuleset(child));
  assert.equal(await egress.removeEgress(child), true);
  assert.ok(!(await egress.state()).children.includes(child.hostAddr));
  await tn.removeNs(child.guestNs);
  await tn.removeNs(child.netns);
  assert.equal(await listRuleset(child), null);
});

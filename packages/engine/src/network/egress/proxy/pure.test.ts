import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { resolveEgressPolicy } from '@forkd/protocol';
import { sniffTlsSni, sniffHttpHost } from './sniff.js';
import { parseDnsQuery, dnsErrorResponse, RCODE } from './dns-message.js';
import { nameAllowed, addressAllowed, addressRulesOf } from './decide.js';
import { DEFAULT_PROXY } from '../config.js';

/** The first bytes Node's TLS client sends for `servername` (a real ClientHello), captured on loopback. */
async function clientHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const got = new Promise<Buffer>((resolve) => server.once('connection', (s) => s.once('data', (d: Buffer) => { resolve(d); s.destroy(); })));
  const c = tls.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, ...(servername ? { servername } : {}), rejectUnauthorized: false });
  c.on('error', () => undefined);
  const hello = await got;
  c.destroy();
  server.close();
  return hello;
}

test('SNI is read from a real ClientHello, also when it arrives in pieces', async () => {
  const hello = await clientHello('pypi.org');
  assert.deepEqual(sniffTlsSni(hello), { name: 'pypi.org' });
  assert.equal(sniffTlsSni(hello.subarray(0, 40)), 'more');
  assert.equal(sniffTlsSni(await clientHello(undefined)), null, 'no SNI (an IP literal) gives no name');
  assert.equal(sniffTlsSni(Buffer.from('GET / HTTP/1.1\r\n')), null);
});

test('Host is read from an HTTP request head', () => {
  assert.deepEqual(sniffHttpHost(Buffer.from('GET / HTTP/1.1\r\nUser-Agent: x\r\nHOST:  Example.com:8080 \r\n\r\n')), { name: 'Example.com' });
  assert.equal(sniffHttpHost(Buffer.from('GET / HTTP/1.1\r\nHost: a')), 'more');
  assert.equal(sniffHttpHost(Buffer.from('GET / HTTP/1.1\r\n\r\n')), null);
});

function query(name: string, id = 0x1234): Buffer {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  return Buffer.concat([Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

test('DNS: the question is parsed; a refusal echoes it with the rcode', () => {
  const q = parseDnsQuery(query('Api.Example.com'))!;
  assert.deepEqual({ id: q.id, name: q.name }, { id: 0x1234, name: 'api.example.com' });
  const r = dnsErrorResponse(query('api.example.com'), q, RCODE.NXDOMAIN);
  assert.equal(r.readUInt16BE(0), 0x1234);
  assert.equal(r.readUInt16BE(2) & 0x8000, 0x8000, 'QR set');
  assert.equal(r.readUInt16BE(2) & 0x000f, 3);
  assert.equal(parseDnsQuery(r), null, 'a response is not a query');
  assert.equal(parseDnsQuery(Buffer.alloc(5)), null);
});

test('names: allow lists, wildcards, ports, deny wins, public', () => {
  const p = resolveEgressPolicy({ allowOut: ['example.com:443', '*.pypi.org'], denyOut: ['evil.pypi.org'] }, 'deny');
  assert.ok(nameAllowed(p, 'example.com', 443));
  assert.ok(!nameAllowed(p, 'example.com', 80));
  assert.ok(nameAllowed(p, 'example.com', null), 'DNS for a name allowed on some port');
  assert.ok(nameAllowed(p, 'files.pypi.org', 80));
  assert.ok(!nameAllowed(p, 'evil.pypi.org', 443));
  assert.ok(!nameAllowed(p, 'other.com', 443));
  assert.ok(!nameAllowed(p, 'bad name', 443));
  const pub = resolveEgressPolicy({ denyOut: ['*.evil.com:443'] }, 'public');
  assert.ok(nameAllowed(pub, 'anything.org', 443));
  assert.ok(!nameAllowed(pub, 'x.evil.com', 443));
  assert.ok(nameAllowed(pub, 'x.evil.com', 80));
});

test('resolved addresses: hard-denied, host, pool, private unless opened, deny entries', () => {
  const rules = addressRulesOf({ defaultEgress: 'deny', childPools: ['10.200.0.0/16'], hostAddresses: ['203.0.113.9'], allowPrivate: ['10.77.0.0/24'], proxy: DEFAULT_PROXY, resolvers: [] });
  const p = resolveEgressPolicy({ allowOut: ['example.com'], denyOut: ['198.51.100.0/24:443'] }, 'deny');
  assert.ok(addressAllowed(rules, p, '93.184.216.34', 443));
  assert.ok(addressAllowed(rules, p, '10.77.0.2', 443), 'opened private range');
  for (const ip of ['10.1.2.3', '192.168.1.1', '172.16.0.1', '100.64.0.1', '169.254.169.254', '127.0.0.1', '10.200.0.6', '203.0.113.9', '::1', 'fd00::1', 'fe80::1', '::ffff:10.1.2.3', '64:ff9b::a01:203']) {
    assert.ok(!addressAllowed(rules, p, ip, 443), ip);
  }
  assert.ok(!addressAllowed(rules, p, '198.51.100.7', 443));
  assert.ok(addressAllowed(rules, p, '198.51.100.7', 80));
});

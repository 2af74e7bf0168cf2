/**
 * Networking with real VMs in real namespaces this test made (its uplink is a test namespace with
 * a test host on it, never the host's real one): isolation, egress through the stub's switch,
 * reaching a guest server from its namespace and through an exposed host port, and no leftovers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ensureFixtureSnapshot } from '../testing/fixture.js';
import { openNetLab, sh, type NetLab } from '../testing/net-lab.js';
import type { Engine } from '../engine.js';
import type { Sandbox } from '../sandbox/sandbox.js';

let lab: NetLab;
let engine: Engine;
let tag = '';
let prefix = '';
const live: Sandbox[] = [];

before(async () => {
  lab = await openNetLab();
  process.env.FORKD_RUN_DIR = lab.runDir;
  const { Engine } = await import('../engine.js');
  const { netnsPrefix } = await import('./index.js');
  prefix = netnsPrefix();
  engine = new Engine({ accel: 'auto', network: { pool: lab.pool, uplinkNetns: lab.uplinkNetns } });
  tag = await ensureFixtureSnapshot(engine);
});
after(async () => {
  await Promise.all(live.map((s) => s.kill().catch(() => undefined)));
  await engine?.cleanup().catch(() => undefined);
  await lab?.close();
});

async function spawn(n: number, network: boolean): Promise<Sandbox[]> {
  const sbs = await engine.spawn({ tag, n, network });
  live.push(...sbs);
  return sbs;
}
/** An HTTP GET from inside the guest (python, 3 s budget): the body, or 'ERR <reason>'. */
async function guestGet(sb: Sandbox, url: string): Promise<string> {
  const r = await sb.eval('python', `
import urllib.request
try:
    _r = urllib.request.urlopen(${JSON.stringify(url)}, timeout=3).read().decode()
except Exception as e:
    _r = 'ERR ' + type(e).__name__
_r`, { timeoutMs: 20_000 });
  assert.equal(r.ok, true, JSON.stringify(r.error));
  return String(r.json);
}
async function startGuestServer(sb: Sandbox, port: number, body: string): Promise<void> {
  await sb.commands.exec({ shell: `mkdir -p /srv/w && echo ${body} > /srv/w/id.txt && (cd /srv/w && setsid python3 -m http.server ${port} >/dev/null 2>&1 &) ; sleep 0.1`, timeout_ms: 20_000 });
  for (let i = 0; i < 100; i++) {
    const r = await sb.commands.exec({ shell: `python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 1)" && echo up`, timeout_ms: 20_000 });
    if (r.stdout.includes('up')) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('guest server did not start');
}
function hostGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => s.end(`GET /id.txt HTTP/1.0\r\nHost: x\r\n\r\n`));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(15_000, () => reject(new Error('timeout')));
  });
}
const testUrl = () => `http://${lab.testHost}:${lab.httpPort}/hello.txt`;

test('networked children: own namespace and unique address; default deny keeps the test host and each other out', async () => {
  const [a, b] = await spawn(2, true);
  assert.ok(a && b);
  assert.ok(a.netns?.startsWith(prefix) && b.netns?.startsWith(prefix) && a.netns !== b.netns);
  assert.equal(a.guestAddr, '172.16.0.2');
  assert.equal(a.network, true);
  assert.match(await guestGet(a, testUrl()), /^ERR/);
  // The guest answers at guest_addr from inside its namespace.
  await startGuestServer(b, 8000, 'child-b');
  assert.match(lab.exec(b.netns!, ['curl', '-sf', '--max-time', '10', 'http://172.16.0.2:8000/id.txt']), /child-b/);
  // ...and through an exposed host port.
  const exposed = await b.exposePort(8000);
  assert.equal(exposed.host, '127.0.0.1');
  assert.match(await hostGet(exposed.host, exposed.port), /child-b/);
  assert.deepEqual(await b.exposePort(8000), exposed);
  // A cannot reach B, neither at B's unique address nor at the guest address (its own).
  const bAddr = JSON.parse(sh('cat', [`${lab.runDir}/vm-${b.id.slice(3)}/net.json`])).hostAddr as string;
  assert.match(await guestGet(a, `http://${bAddr}:8000/id.txt`), /^ERR/);
});

test('with egress opened (the stub\'s test switch) a child reaches the test host as its own address, not another child', async () => {
  process.env.FORKD_TEST_EGRESS = 'allow-all';
  let c: Sandbox, d: Sandbox;
  try {
    [c, d] = (await spawn(2, true)) as [Sandbox, Sandbox];
  } finally {
    delete process.env.FORKD_TEST_EGRESS;
  }
  assert.match(await guestGet(c, testUrl()), new RegExp(lab.tag));
  await startGuestServer(d, 8000, 'child-d');
  const dAddr = JSON.parse(sh('cat', [`${lab.runDir}/vm-${d.id.slice(3)}/net.json`])).hostAddr as string;
  assert.match(await guestGet(c, `http://${dAddr}:8000/id.txt`), /^ERR/);
});

test('a child without network reaches nothing, yet its port is exposed on the host', async () => {
  const [e] = await spawn(1, false);
  assert.ok(e);
  assert.equal(e.network, false);
  assert.ok(e.netns);
  assert.match(await guestGet(e, testUrl()), /^ERR/);
  await startGuestServer(e, 8001, 'child-e');
  const exposed = await e.exposePort(8001);
  const t0 = performance.now();
  assert.match(await hostGet(exposed.host, exposed.port), /child-e/);
  console.log(`# getHost round trip (connect, GET, whole answer): ${(performance.now() - t0).toFixed(1)} ms`);
});

test('killing the children removes every namespace, veth, tap and listener', async () => {
  const ports = await Promise.all(live.filter((s) => s.alive).slice(0, 1).map((s) => s.exposePort(8000).catch(() => null)));
  await Promise.all(live.map((s) => s.kill()));
  assert.doesNotMatch(sh('ip', ['netns', 'list']), new RegExp(prefix));
  assert.doesNotMatch(sh('ip', ['-n', lab.uplinkNetns, '-o', 'link']), /fkd/);
  for (const p of ports) if (p) await assert.rejects(hostGet(p.host, p.port));
});

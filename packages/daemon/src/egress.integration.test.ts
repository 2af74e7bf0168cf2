/**
 * The egress policy on real networked children, through the daemon: the uplink and the test host
 * are namespaces this test made (net-lab), the test host's private range opened by
 * --egress-allow-private. Default policy: the test host is unreachable; allow_out for its range:
 * reachable; PUT /v1/sandboxes/:id/network changes it on the live child; a name rule reaches the
 * test host by name through the proxy, resolved by the test's DNS (--egress-resolver); a sandbox
 * without network has no policy to change (409).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller } from '@forkd/sdk';
import { netnsPrefix, openNetLab, sh, type NetLab } from '@forkd/engine/testing';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let lab: NetLab;
let d: TestDaemon;
let c: Controller;
let prefix = '';
let servers: ChildProcess | null = null;
const NAME = 'web.forkd.test';
/** The egress tests' test hosts (engine/src/network/egress/testing): HTTP on port 80 and a DNS server. */
const SERVERS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../engine/src/network/egress/testing/servers.ts');

before(async () => {
  lab = await openNetLab();
  servers = spawn('nsenter', [`--net=/run/netns/${lab.testHostNetns}`, process.execPath, '--conditions=source', '--import', 'tsx', SERVERS, JSON.stringify([
    { kind: 'http', addr: lab.testHost, port: 80, label: 'named-host' },
    { kind: 'dns', addr: lab.testHost, port: 53, records: { [NAME]: lab.testHost } },
  ])], { cwd: path.dirname(SERVERS), stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    servers!.stdout!.once('data', (b: Buffer) => (b.toString().startsWith('ready') ? resolve() : reject(new Error(`servers: ${b}`))));
    servers!.once('exit', (code) => reject(new Error(`servers exited ${code}`)));
  });
  d = await startTestDaemon({
    extraArgs: ['--uplink-netns', lab.uplinkNetns, '--net-pool', lab.pool, '--egress-allow-private', lab.testRange, '--egress-resolver', `${lab.testHost}:53`],
    env: { FORKD_RUN_DIR: lab.runDir },
  });
  c = new Controller({ socketPath: d.socketPath });
  prefix = netnsPrefix(lab.runDir);
});
after(async () => {
  await d?.stop();
  servers?.kill('SIGKILL');
  for (const n of sh('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => prefix && n.startsWith(prefix))) sh('ip', ['netns', 'del', n]);
  await lab?.close();
});

/** What the guest gets from the test host's HTTP server (its body, or FAILED). */
async function fetchTestHost(id: string): Promise<string> {
  const url = `http://${lab.testHost}:${lab.httpPort}/hello.txt`;
  const r = await c.exec(id, { cmd: `python3 -c "import urllib.request; print(urllib.request.urlopen('${url}', timeout=4).read().decode())" 2>&1 || echo FAILED` });
  return r.stdout;
}

test('default policy denies the test host, allow_out opens it, PUT /network changes a live child either way', async () => {
  const [denied] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true });
  const [allowed] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, allow_out: [lab.testRange] });
  try {
    assert.equal(denied!.egress, null);
    assert.deepEqual(allowed!.egress?.allow_out, [lab.testRange]);
    assert.match(await fetchTestHost(denied!.id), /FAILED/, 'a default-deny child reached the test host');
    assert.match(await fetchTestHost(allowed!.id), new RegExp(lab.tag), 'allow_out did not open the test host');

    const opened = await c.updateSandboxNetwork(denied!.id, { allow_out: [`${lab.testHost}:${lab.httpPort}`] });
    assert.deepEqual(opened.egress?.allow_out, [`${lab.testHost}:${lab.httpPort}`]);
    assert.match(await fetchTestHost(denied!.id), new RegExp(lab.tag), 'PUT /network did not open the live child');
    await c.updateSandboxNetwork(allowed!.id, { deny_out: [lab.testRange] });
    assert.match(await fetchTestHost(allowed!.id), /FAILED/, 'PUT /network did not close the live child');
  } finally {
    await Promise.all([denied, allowed].map((s) => s && c.killSandbox(s.id).catch(() => undefined)));
  }
  assert.deepEqual(sh('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(prefix)), []);
});

test('a name rule reaches the test host by name through the egress proxy, resolved by the test DNS; other names do not resolve', async () => {
  const [named] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, allow_out: [NAME] });
  try {
    // The guest has no resolver configured: any server will do, its DNS goes to the proxy's forwarder.
    await c.exec(named!.id, { cmd: 'echo nameserver 192.0.2.53 > /etc/resolv.conf' });
    const get = async (url: string) => (await c.exec(named!.id, { cmd: `python3 -c "import urllib.request; print(urllib.request.urlopen('${url}', timeout=5).read().decode())" 2>&1 || echo FAILED` })).stdout;
    assert.match(await get(`http://${NAME}/`), new RegExp(`named-host host=${NAME.replace(/\./g, '\\.')}`));
    assert.match(await get('http://other.forkd.test/'), /FAILED/);
    // The rule is a name, not the address: the address itself on another port stays closed.
    assert.match(await get(`http://${lab.testHost}:${lab.httpPort}/hello.txt`), /FAILED/);
  } finally {
    await c.killSandbox(named!.id).catch(() => undefined);
  }
});

test('a sandbox without network has no egress policy to change: 409', async () => {
  const [plain] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  try {
    await assert.rejects(c.updateSandboxNetwork(plain!.id, { allow_out: [lab.testRange] }), (e: Error & { code?: string }) => e.code === 'FORKD_E_CONFLICT');
  } finally {
    await c.killSandbox(plain!.id);
  }
});

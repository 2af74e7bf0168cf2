/**
 * The egress policy on real networked children, through the daemon: the uplink and the test host
 * are namespaces this test made (net-lab), the test host's private range opened by
 * --egress-allow-private. Default policy: the test host is unreachable; allow_out for its range:
 * reachable; PUT /v1/sandboxes/:id/network changes it on the live child; a name rule reaches the
 * test host by name through the proxy, resolved by the guest's own libc (the image's resolv.conf) via
 * the forwarder and the test's DNS (--egress-resolver), a default-deny child resolves nothing; a sandbox
 * without network has no policy to change (409).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Controller } from '@forkd/sdk';
import { GUEST_NETWORK } from '@forkd/protocol';
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

test('DNS in a child: the image\'s resolver answers names its policy allows (guest libc), a default-deny child resolves and reaches nothing', async () => {
  const [named] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, allow_out: [NAME] });
  const [denied] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true });
  try {
    // No resolver is configured by the test: the child's /etc/resolv.conf comes with the snapshot.
    const resolv = (await c.exec(named!.id, { cmd: 'cat /etc/resolv.conf' })).stdout;
    assert.match(resolv, new RegExp(`^nameserver ${GUEST_NETWORK.nameserver.replace(/\./g, '\\.')}$`, 'm'));
    // glibc's resolver (getent: NSS hosts) and Python's getaddrinfo, as a program in the guest would use them.
    const getent = await c.exec(named!.id, { cmd: `getent hosts ${NAME}` });
    assert.equal(getent.exit_code, 0, `getent hosts ${NAME} failed: ${getent.stdout}${getent.stderr}`);
    assert.match(getent.stdout, new RegExp(`^${lab.testHost.replace(/\./g, '\\.')}\\s+${NAME.replace(/\./g, '\\.')}`));
    const gai = await c.exec(named!.id, { cmd: `python3 -c "import socket; print(socket.getaddrinfo('${NAME}', 80, socket.AF_INET)[0][4][0])"` });
    assert.equal(gai.stdout.trim(), lab.testHost);
    const get = async (id: string, url: string) => (await c.exec(id, { cmd: `python3 -c "import urllib.request; print(urllib.request.urlopen('${url}', timeout=5).read().decode())" 2>&1 || echo FAILED` })).stdout;
    assert.match(await get(named!.id, `http://${NAME}/`), new RegExp(`named-host host=${NAME.replace(/\./g, '\\.')}`));
    // A name the policy does not allow does not resolve (NXDOMAIN from the forwarder), and is not reached.
    assert.notEqual((await c.exec(named!.id, { cmd: 'getent hosts other.forkd.test' })).exit_code, 0);
    assert.match(await get(named!.id, 'http://other.forkd.test/'), /FAILED/);
    // The rule is a name, not the address: the address itself on another port stays closed.
    assert.match(await get(named!.id, `http://${lab.testHost}:${lab.httpPort}/hello.txt`), /FAILED/);

    // Default deny: the same resolver, but nothing answers it; fails fast (refused, not a timeout).
    const t0 = Date.now();
    const deniedLookup = await c.exec(denied!.id, { cmd: `getent hosts ${NAME}` });
    assert.notEqual(deniedLookup.exit_code, 0, `a default-deny child resolved ${NAME}: ${deniedLookup.stdout}`);
    assert.ok(Date.now() - t0 < 15_000, `a refused lookup took ${Date.now() - t0} ms`);
    assert.match(await get(denied!.id, `http://${NAME}/`), /FAILED/);
  } finally {
    await Promise.all([named, denied].map((s) => s && c.killSandbox(s.id).catch(() => undefined)));
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

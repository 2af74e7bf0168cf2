/**
 * Networking through the daemon, with real VMs and namespaces this test made (the uplink is a test
 * namespace; the test host opened by --egress-allow-private and each child's allow_out): kill -9 of the daemon with 3 networked
 * children, adoption with their network intact, clean removal; 50 spawn/kill cycles leave nothing;
 * spawn->ready with and without network, alternated.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Controller, type SandboxInfo } from '@forkd/sdk';
import { netnsPrefix, openNetLab, sh, type NetLab } from '@forkd/engine/testing';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

let lab: NetLab;
let d: TestDaemon;
let c: Controller;
let prefix = '';

before(async () => {
  lab = await openNetLab();
  d = await startTestDaemon({
    keeperGraceSecs: 120,
    extraArgs: ['--uplink-netns', lab.uplinkNetns, '--net-pool', lab.pool, '--egress-allow-private', lab.testRange],
    env: { FORKD_RUN_DIR: lab.runDir },
  });
  c = new Controller({ socketPath: d.socketPath });
  prefix = netnsPrefix(lab.runDir);
});
after(async () => {
  await d?.stop();
  await lab?.close();
});

function leftovers(): string[] {
  const ns = sh('ip', ['netns', 'list']).split('\n').filter((l) => l.startsWith(prefix));
  const veths = sh('ip', ['-n', lab.uplinkNetns, '-o', 'link']).split('\n').filter((l) => /fkd[0-9a-f]{12}/.test(l));
  return [...ns, ...veths];
}
async function guestCurl(id: string, url: string): Promise<string> {
  const r = await c.exec(id, { cmd: `python3 -c "import urllib.request; print(urllib.request.urlopen('${url}', timeout=5).read().decode())" 2>&1 || echo FAILED` });
  return r.stdout;
}
function hostGet(hostPort: { host: string; port: number }, pathName: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(hostPort.port, hostPort.host, () => s.end(`GET ${pathName} HTTP/1.0\r\n\r\n`));
    let out = '';
    s.on('data', (b) => (out += b.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(15_000, () => reject(new Error('timeout')));
  });
}
const testUrl = () => `http://${lab.testHost}:${lab.httpPort}/hello.txt`;

test('kill -9 of the daemon with 3 networked children: the next daemon adopts them with their network; killing them removes everything', async () => {
  const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 3, per_child_netns: true, allow_out: [lab.testRange] });
  try {
    await adoptedWithNetwork(sbs);
  } finally {
    await Promise.all(sbs.map((s) => c.killSandbox(s.id).catch(() => undefined)));
  }
  assert.deepEqual(leftovers(), []);
});

async function adoptedWithNetwork(sbs: SandboxInfo[]): Promise<void> {
  for (const s of sbs) {
    assert.equal(s.network, true);
    assert.ok(s.netns?.startsWith(prefix), String(s.netns));
    assert.equal(s.guest_addr, '172.16.0.2');
  }
  const server = sbs[0]!;
  await c.exec(server.id, { cmd: 'mkdir -p /srv && echo from-guest > /srv/id.txt && cd /srv && (setsid python3 -m http.server 8000 >/dev/null 2>&1 &)' });
  const up = await c.exec(server.id, { cmd: 'for i in $(seq 100); do python3 -c "import socket; socket.create_connection((\'127.0.0.1\', 8000), 1)" 2>/dev/null && echo up && break; sleep 0.2; done', timeout_secs: 60 });
  assert.match(up.stdout, /up/, 'the guest server did not start');
  const before9 = await c.exposePort(server.id, 8000);
  assert.match(await hostGet(before9, '/id.txt'), /from-guest/);
  await d.kill9();
  await d.restart();
  const after9 = await c.listSandboxes();
  assert.deepEqual(after9.map((s) => s.id).sort(), sbs.map((s) => s.id).sort(), d.log().split('\n').filter((l) => /"level":(40|50)/.test(l)).join('\n'));
  for (const s of after9) {
    assert.equal(s.netns, sbs.find((x) => x.id === s.id)!.netns);
    assert.match(await guestCurl(s.id, testUrl()), new RegExp(lab.tag), `adopted ${s.id} lost its way out`);
  }
  // From its namespace, and through a port exposed by the new daemon.
  assert.match(lab.exec(server.netns!, ['curl', '-sf', '--max-time', '10', 'http://172.16.0.2:8000/id.txt']), /from-guest/);
  const again = await c.exposePort(server.id, 8000);
  assert.match(await hostGet(again, '/id.txt'), /from-guest/);
  await c.killSandbox(server.id);
  await assert.rejects(hostGet(again, '/id.txt'));
}

test('a branch of a networked sandbox: its children each get their own network (namespace, way out, exposed ports)', async () => {
  const [src] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: true, allow_out: [lab.testRange] });
  const tag = `netbr-${src!.id.slice(0, 8)}`;
  const kids: SandboxInfo[] = [];
  try {
    // A server running at the branch runs in every child of it.
    await c.exec(src!.id, { cmd: 'mkdir -p /srv && echo source > /srv/id.txt && cd /srv && (setsid python3 -m http.server 8000 >/dev/null 2>&1 &)' });
    const up = await c.exec(src!.id, { cmd: 'for i in $(seq 100); do python3 -c "import socket; socket.create_connection((\'127.0.0.1\', 8000), 1)" 2>/dev/null && echo up && break; sleep 0.2; done', timeout_secs: 60 });
    assert.match(up.stdout, /up/);
    await c.branchSandbox(src!.id, { tag });
    kids.push(...(await c.spawnSandboxes({ snapshot_tag: tag, n: 2, network: true, allow_out: [lab.testRange] })));
    const all = [src!, ...kids];
    assert.equal(new Set(all.map((s) => s.netns)).size, 3, 'a child of the branch shares a namespace');
    for (const k of kids) {
      assert.ok(k.netns?.startsWith(prefix), String(k.netns));
      assert.equal(k.guest_addr, '172.16.0.2');
      await c.exec(k.id, { cmd: `echo ${k.id} > /srv/id.txt` });
      assert.match(await guestCurl(k.id, testUrl()), new RegExp(lab.tag), `branch child ${k.id} has no way out`);
      assert.match(lab.exec(k.netns!, ['curl', '-sf', '--max-time', '10', 'http://172.16.0.2:8000/id.txt']), new RegExp(k.id));
      assert.match(await hostGet(await c.exposePort(k.id, 8000), '/id.txt'), new RegExp(k.id), 'getHost reached another child');
    }
    // The source keeps its own network and answers as itself.
    assert.match(await hostGet(await c.exposePort(src!.id, 8000), '/id.txt'), /source/);
  } finally {
    await Promise.all([src, ...kids].map((s) => s && c.killSandbox(s.id).catch(() => undefined)));
    await c.deleteSnapshot(tag, { force: true }).catch(() => undefined);
  }
  assert.deepEqual(leftovers(), []);
});

test('50 spawn/kill cycles of networked children leave no namespace, veth or tap', async () => {
  for (let round = 0; round < 10; round++) {
    const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 5, network: true });
    assert.equal(new Set(sbs.map((s) => s.netns)).size, 5);
    await Promise.all(sbs.map((s) => c.killSandbox(s.id)));
  }
  assert.deepEqual(leftovers(), []);
  // The uplink keeps only its one shared table, whatever the number of children.
  assert.equal((sh('ip', ['netns', 'exec', lab.uplinkNetns, 'nft', 'list', 'tables']).match(/table/g) ?? []).length, 1);
});

test('spawn->ready with and without network, 10 each, alternated', async () => {
  const times: Record<'net' | 'plain', number[]> = { net: [], plain: [] };
  for (let i = 0; i < 20; i++) {
    const kind = i % 2 === 0 ? 'net' : 'plain';
    const [s] = (await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1, network: kind === 'net' })) as [SandboxInfo];
    times[kind].push(s.ready.spawn_to_ready_ms);
    await c.killSandbox(s.id);
  }
  const stat = (v: number[]) => { const s = [...v].sort((a, b) => a - b); return `min ${s[0]!.toFixed(0)} median ${((s[4]! + s[5]!) / 2).toFixed(0)} max ${s[9]!.toFixed(0)} ms`; };
  console.log(`# spawn->ready with network: ${stat(times.net)}; without: ${stat(times.plain)}`);
  assert.equal(times.net.length, 10);
  assert.deepEqual(leftovers(), []);
});

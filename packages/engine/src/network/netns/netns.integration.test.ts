/**
 * The plumbing without a VM (root, real namespaces in a test uplink): what a networked and an
 * isolated child's namespace hold, the address leaving it, and that nothing is left afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openNetLab, sh, type NetLab } from '../../testing/net-lab.js';

let lab: NetLab;
let mod: typeof import('../index.js');

before(async () => {
  lab = await openNetLab();
  process.env.FORKD_RUN_DIR = lab.runDir; // our namespaces' prefix comes from the run dir
  mod = await import('../index.js');
});
after(async () => {
  await lab?.close();
});

const id = (n: number) => `${n.toString(16).padStart(2, "0")}00000000000000`;

test('a networked child namespace: tap, veth with a unique pool address, NAT, default-deny egress; removed without trace', async () => {
  const nets = new mod.ChildNetworks({ pool: lab.pool, uplinkNetns: lab.uplinkNetns });
  const a = await nets.create(id(1), { network: true });
  const b = await nets.create(id(2), { network: true });
  try {
    assert.equal(a.net.netns, mod.childNetnsName(id(1)));
    assert.notEqual(a.net.hostAddr, b.net.hostAddr);
    assert.equal(a.net.guestAddr, '172.16.0.2');
    const links = lab.exec(a.net.netns, ['ip', '-o', 'link']);
    assert.match(links, /tap0/);
    assert.match(links, /veth0/);
    assert.match(sh('ip', ['-n', lab.uplinkNetns, '-o', 'addr']), new RegExp(`${a.net.vethUplink}.*inet `));
    // The namespace itself reaches the test host through the uplink (as its own unique address).
    assert.match(lab.exec(a.net.netns, ['curl', '-sf', '--max-time', '5', `http://${lab.testHost}:${lab.httpPort}/hello.txt`]), new RegExp(lab.tag));
    const rules = lab.exec(a.net.netns, ['nft', 'list', 'ruleset']);
    assert.match(rules, new RegExp(`snat (ip )?to ${a.net.hostAddr.replaceAll('.', '\\.')}`));
    assert.match(rules, /iifname "tap0" drop/);
    assert.equal(lab.exec(a.net.netns, ['cat', '/proc/sys/net/ipv4/ip_forward']).trim(), '1');
  } finally {
    await a.release();
    await b.release();
  }
  const left = sh('ip', ['netns', 'list']);
  assert.doesNotMatch(left, new RegExp(mod.netnsPrefix()));
  assert.doesNotMatch(sh('ip', ['-n', lab.uplinkNetns, '-o', 'link']), /fkd/);
  assert.equal(nets.pool.inUse, 0);
});

test('an isolated child namespace has the tap and no way out; stale namespaces (no VM dir) are swept', async () => {
  const nets = new mod.ChildNetworks({ pool: lab.pool, uplinkNetns: lab.uplinkNetns });
  const c = await nets.create(id(3), { network: false });
  assert.equal(c.net.vethUplink, '');
  assert.doesNotMatch(lab.exec(c.net.netns, ['ip', '-o', 'link']), /veth0/);
  assert.equal(lab.exec(c.net.netns, ['ip', 'route', 'show', 'default']).trim(), '');
  // No vm-<id> dir in the run dir: it is stale.
  const removed = await mod.sweepStaleNetns();
  assert.deepEqual(removed, [`netns:${c.net.netns}`]);
  assert.doesNotMatch(sh('ip', ['netns', 'list']), new RegExp(mod.netnsPrefix()));
});

test('a set-up that fails leaves nothing behind, and never removes a namespace it did not make', async () => {
  const nets = new mod.ChildNetworks({ pool: lab.pool, uplinkNetns: lab.uplinkNetns });
  const a = await nets.create(id(4), { network: true });
  try {
    // The same VM id again: its namespace exists, so the set-up stops there and leaves a alone.
    await assert.rejects(nets.create(id(4), { network: true }), (e: Error & { code?: string }) => e.code === 'FORKD_E_TOOL_FAILED' && /namespace/.test(e.message));
    assert.match(lab.exec(a.net.netns, ['ip', '-o', 'link']), /veth0/);
    assert.equal(nets.pool.inUse, 1);
    // A ruleset nft rejects (an egress policy gone wrong): the namespace and veth made before it go.
    const bad = { prepareEgress: async () => ({ ruleset: 'table inet forkd_egress { nonsense }\n' }), applyEgress: async () => undefined, removeEgress: async () => true };
    nets.useEgress(bad);
    await assert.rejects(nets.create(id(5), { network: true }), (e: Error & { code?: string }) => e.code === 'FORKD_E_TOOL_FAILED');
    assert.doesNotMatch(sh('ip', ['netns', 'list']), new RegExp(mod.childNetnsName(id(5))));
    assert.doesNotMatch(sh('ip', ['-n', lab.uplinkNetns, '-o', 'link']), new RegExp(id(5).slice(0, 12)));
    assert.equal(nets.pool.inUse, 1);
  } finally {
    await a.release();
  }
  assert.doesNotMatch(sh('ip', ['netns', 'list']), new RegExp(mod.netnsPrefix()));
  assert.equal(nets.pool.inUse, 0);
});

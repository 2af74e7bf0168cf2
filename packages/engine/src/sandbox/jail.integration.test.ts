/**
 * The jail, read from outside (issue 14 §4): a spawned child's QEMU runs as its own uid with
 * no_new_privs, a seccomp filter and no capabilities, sees only its own files, cannot write the
 * snapshot it maps; another VM's uid cannot open its overlay; a branch's RAM image is unreadable
 * by an unrelated local user. Real VMs; run as root (the jail needs it).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Sandbox } from './sandbox.js';
import { ensureFixtureSnapshot, testEngine, vmOf } from '../testing/fixture.js';
import { JAIL_GROUP, groupId } from '../qemu/jail.js';
import { assembledPath, memoryFileFor } from '../snapshot/memory.js';

const engine = testEngine();
const asRoot = process.getuid?.() === 0;
let base = '';
const live: Sandbox[] = [];
const made: string[] = [];
const run = crypto.randomBytes(3).toString('hex');

before(async () => {
  // As the daemon and keeper run: the view must not inherit the launcher's umask (its dirs would shut the VM's uid out).
  process.umask(0o077);
  if (asRoot) base = await ensureFixtureSnapshot(engine);
});
after(async () => {
  await Promise.all(live.map((s) => s.kill()));
  for (const tag of made.reverse()) await engine.removeSnapshot(tag, { cascade: true }).catch(() => undefined);
});

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Runs argv as uid:gid with no supplementary groups; returns the exit status. */
function asUser(uid: number, gid: number, argv: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', ...argv], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

test('a child QEMU runs as its own uid, with no_new_privs, seccomp and no capabilities, in a view of its own files', { skip: !asRoot && 'needs root' }, async () => {
  const kids = await engine.spawn({ tag: base, n: 2 });
  live.push(...kids);
  const [a, b] = kids.map((k) => vmOf(k));
  const gid = await groupId(JAIL_GROUP);
  for (const vm of [a!, b!]) {
    const st = status(vm.pid);
    // The uid claimed for the VM is its run dir's owner (jailUid(dir) unless a live VM had it).
    const uid = (await fs.stat(vm.dir)).uid;
    assert.notEqual(uid, 0);
    assert.equal(st.Uid, `${uid}\t${uid}\t${uid}\t${uid}`);
    // claimJailUid finds other VMs' uids as owners of /proc/<pid>: true once QEMU exec'd as its uid.
    assert.equal((await fs.stat(`/proc/${vm.pid}`)).uid, uid);
    assert.equal(st.Gid, `${gid}\t${gid}\t${gid}\t${gid}`);
    assert.equal(st.Groups, '');
    assert.equal(st.NoNewPrivs, '1');
    assert.equal(st.Seccomp, '2');
    assert.equal(st.CapEff, '0000000000000000');
    assert.equal(st.CapPrm, '0000000000000000');
    assert.equal(st.CapBnd, '0000000000000000');
    assert.match(readFileSync(`/proc/${vm.pid}/cmdline`, 'utf8'), /-sandbox\0on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny/);
  }
  assert.notEqual((await fs.stat(a!.dir)).uid, (await fs.stat(b!.dir)).uid, 'two VMs share a uid');

  // The mount view: /proc/<pid>/root is QEMU's root. Only the system dirs, its run dir and its snapshot's files.
  const root = `/proc/${a!.pid}/root`;
  const top = (await fs.readdir(root)).sort();
  const own = [a!.dir, engine.layout.root, engine.layout.snapshots].map((p) => p.split('/')[1]!);
  for (const name of top) assert.ok(['bin', 'dev', 'etc', 'lib', 'lib64', 'sbin', 'usr', ...own].includes(name), `unexpected /${name} in the view`);
  // As root every child has a tap in its own namespace: the view also holds /dev/net/tun (and nothing else there).
  const hasTap = a!.net !== null;
  assert.deepEqual((await fs.readdir(path.join(root, 'dev'))).sort(), ['full', ...(hasTap ? ['net'] : []), 'null', 'random', 'urandom', 'zero']);
  if (hasTap) {
    assert.deepEqual(await fs.readdir(path.join(root, 'dev', 'net')), ['tun']);
    // The tap belongs to the VM's uid: the dropped QEMU could open it, no other VM's uid can.
    const owner = execFileSync('ip', ['netns', 'exec', a!.net!.netns, 'cat', `/sys/class/net/${a!.net!.tap}/owner`], { encoding: 'utf8' }).trim();
    assert.equal(Number(owner), (await fs.stat(a!.dir)).uid);
  }
  const mem = await memoryFileFor(engine.layout, await engine.getSnapshot(base));
  assert.ok((await fs.stat(path.join(root, mem))).isFile(), 'the snapshot memory is in the view');
  assert.deepEqual((await fs.readdir(path.join(root, path.dirname(b!.dir)))).filter((n) => n.startsWith('vm-')), [path.basename(a!.dir)], 'another VM dir is visible');
  assert.deepEqual((await fs.readdir(path.join(root, 'etc'))), ['ld.so.cache']);
  const mounts = readFileSync(`/proc/${a!.pid}/mountinfo`, 'utf8').split('\n');
  const memMount = mounts.find((l) => l.split(' ')[4] === mem);
  assert.ok(memMount?.split(' ')[5]?.split(',').includes('ro'), `memory image not mounted read-only: ${memMount}`);

  // QEMU's uid can read the snapshot's files but write none of them.
  const uidA = (await fs.stat(a!.dir)).uid;
  const snapDir = (await engine.getSnapshot(base)).dir;
  const inView = (cmd: string) => spawnSync('nsenter', ['-t', String(a!.pid), '-m', 'setpriv', '--reuid', String(uidA), '--regid', String(gid), '--clear-groups', '--', 'sh', '-c', cmd]).status;
  assert.equal(inView(`head -c 1 '${mem}' > /dev/null`), 0, 'in its view the VM uid cannot even read the memory image (the checks below would prove nothing)');
  assert.notEqual(asUser(uidA, gid!, ['sh', '-c', `: >> '${mem}'`]).status, 0, 'the VM uid could open the memory image for writing');
  assert.notEqual(asUser(uidA, gid!, ['sh', '-c', `: >> '${path.join(snapDir, 'disk.qcow2')}'`]).status, 0, 'the VM uid could write the snapshot disk');
  assert.notEqual(inView(`: >> '${mem}'`), 0, 'inside the view, the memory image is writable');
  assert.notEqual(inView(`: >> '${path.join(snapDir, 'disk.qcow2')}'`), 0, 'inside the view, the snapshot disk is writable');
  // Another VM's uid cannot open this VM's overlay.
  const overlayA = path.join(engine.layout.overlays, `${path.basename(a!.dir)}.qcow2`);
  assert.notEqual(asUser((await fs.stat(b!.dir)).uid, gid!, ['cat', overlayA]).status, 0, "one VM's uid read another's overlay");
  const overlay = await fs.stat(overlayA);
  assert.equal(overlay.uid, uidA);
  assert.equal(overlay.mode & 0o777, 0o600);

  // The child still works.
  const r = await kids[0]!.eval('python', '21 * 2', { timeoutMs: 25_000 });
  assert.equal(r.json, 42);
});

test('a branch of a live child: its RAM image is the daemon\'s, unreadable by other local users; children of it still run', { skip: !asRoot && 'needs root' }, async () => {
  const [src] = await engine.spawn({ tag: base, n: 1 });
  live.push(src!);
  await src!.eval('python', "secret = 'jail-' + '42'", { timeoutMs: 25_000 });
  const tag = `it-${run}-jail`;
  made.push(tag);
  const r = await engine.branch(src!, { tag, mode: 'full' });
  const image = assembledPath(engine.layout, r.snapshot.manifest);
  const st = await fs.stat(image);
  assert.equal(st.uid, 0);
  assert.equal(st.gid, await groupId(JAIL_GROUP));
  assert.equal(st.mode & 0o777, 0o640);
  assert.equal((await fs.stat(engine.layout.snapshots)).mode & 0o777, 0o700);
  assert.equal((await fs.stat(path.join(r.snapshot.dir, 'vmstate'))).mode & 0o777, 0o600);
  const nobody = asUser(65534, 65534, ['cat', image]);
  assert.notEqual(nobody.status, 0, 'nobody read a branch RAM image');
  const [kid] = await engine.spawn({ tag, n: 1 });
  live.push(kid!);
  assert.equal((await kid!.eval('python', 'secret', { timeoutMs: 25_000 })).json, 'jail-42');
});

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promises as fs, existsSync } from 'node:fs';
import { cleanupStale } from './cleanup.js';
import { procCmdline } from './proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-rti-'));
const run = path.join(tmp, 'run');
process.env.FORKD_RUN_DIR = run;
after(() => fs.rm(tmp, { recursive: true, force: true }));

const alive = async (pid: number) => (await procCmdline(pid)) !== null;

async function holder(): Promise<{ child: ReturnType<typeof spawn>; pid: number; dir: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, '..', 'testing', 'hold-qemu.fixture.ts')], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, FORKD_RUN_DIR: run } });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(buf.slice(0, i));
    });
    child.once('exit', (code) => reject(new Error(`holder exited early (${code})`)));
  });
  return { child, ...(JSON.parse(line) as { pid: number; dir: string }) };
}

test('SIGKILL of the owning Node process takes its QEMU down (pdeathsig); cleanup removes the dir', async () => {
  const h = await holder();
  assert.ok(await alive(h.pid));
  assert.ok((await procCmdline(h.pid))!.some((a) => a.includes(h.dir)));
  // The owner is alive: cleanup leaves it alone.
  const before = await cleanupStale();
  assert.ok(before.kept.includes(h.dir));
  assert.deepEqual(before.killed, []);

  const t0 = Date.now();
  h.child.kill('SIGKILL');
  while ((await alive(h.pid)) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await alive(h.pid), false, 'QEMU outlived its owner');
  process.stderr.write(`# QEMU gone ${Date.now() - t0} ms after its owner was SIGKILLed\n`);
  assert.ok(existsSync(h.dir), 'the dead owner left its dir');
  const r = await cleanupStale();
  assert.deepEqual(r.removed, [h.dir]);
  assert.equal(existsSync(h.dir), false);
});

test('orphan QEMU (no pdeathsig, owner dead, or dir gone) is found by its cmdline and killed', async () => {
  // Simulate QEMUs whose owner died without pdeathsig: started detached from us.
  const mk = async (id: string, withDir: boolean) => {
    const dir = path.join(run, `vm-${id}`);
    await fs.mkdir(dir, { recursive: true });
    const q = spawn('qemu-system-x86_64', ['-M', 'microvm', '-accel', 'tcg', '-m', '32M', '-nodefaults', '-nographic', '-serial', 'null', '-incoming', 'defer', '-qmp', `unix:${dir}/qmp.sock,server=on,wait=off`], { stdio: 'ignore', detached: true });
    after(() => q.kill('SIGKILL'));
    while (!existsSync(path.join(dir, 'qmp.sock'))) await new Promise((r) => setTimeout(r, 10));
    if (withDir) await fs.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ kind: 'x', owner_pid: 2 ** 22 + 3, owner_starttime: 5, qemu_pid: null, created_at: '' }));
    else await fs.rm(dir, { recursive: true });
    return { pid: q.pid!, dir };
  };
  const a = await mk('00000000000000c1', true);
  const b = await mk('00000000000000c2', false);
  const dry = await cleanupStale({ dryRun: true });
  assert.deepEqual(dry.killed.map((k) => k.pid).sort(), [a.pid, b.pid].sort());
  assert.ok(await alive(a.pid));
  const r = await cleanupStale();
  assert.deepEqual(r.killed.map((k) => k.pid).sort(), [a.pid, b.pid].sort());
  assert.match(r.killed.find((k) => k.pid === b.pid)!.reason, /run dir is gone/);
  assert.equal(await alive(a.pid), false);
  assert.equal(await alive(b.pid), false);
  assert.deepEqual(r.removed, [a.dir]);
});

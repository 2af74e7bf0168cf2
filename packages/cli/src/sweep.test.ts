import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), 'index.ts');

/** Field 22 of /proc/<pid>/stat (after the parenthesised comm): what owner.json records. */
const startTime = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[19]);

async function vmDir(run: string, id: string, ownerPid: number, ownerStart: number): Promise<string> {
  const dir = path.join(run, `vm-${id}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ kind: 'fork', owner_pid: ownerPid, owner_starttime: ownerStart, qemu_pid: null, created_at: '' }));
  await fs.writeFile(path.join(dir, 'disk.qcow2'), 'overlay');
  return dir;
}

test('any forkd command removes the run dirs of a dead forkd process (a fork --local killed with -9), not a live one', async () => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fk-sweep-'));
  try {
    const run = path.join(tmp, 'run');
    const dead = spawnSync('true').pid!;
    const deadDir = await vmDir(run, '00000000000000aa', dead, 1);
    const liveDir = await vmDir(run, '00000000000000bb', process.pid, startTime(process.pid));
    const r = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', CLI, '--home', path.join(tmp, 'home'), 'where'], { encoding: 'utf8', env: { ...process.env, FORKD_RUN_DIR: run }, timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(existsSync(deadDir), false, 'the dead owner\'s run dir is still there');
    assert.ok(existsSync(liveDir), 'a live owner\'s run dir was removed');
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
});

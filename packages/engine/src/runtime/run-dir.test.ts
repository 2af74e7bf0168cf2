import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { createVmDir, ensureRunDir } from './dir.js';

const saved = process.env.FORKD_RUN_DIR;
afterEach(() => {
  if (saved === undefined) delete process.env.FORKD_RUN_DIR;
  else process.env.FORKD_RUN_DIR = saved;
});

async function scratch(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'fk-rd-'));
}
const unsafe = (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_RUN_DIR_UNSAFE';

test('a run dir that is missing is made 0700; one of mode 0755 is refused, for VM dirs too', async () => {
  const top = await scratch();
  process.env.FORKD_RUN_DIR = path.join(top, 'run');
  assert.equal(await ensureRunDir(), path.join(top, 'run'));
  assert.equal((await fs.stat(path.join(top, 'run'))).mode & 0o777, 0o700);
  await fs.chmod(path.join(top, 'run'), 0o755);
  await assert.rejects(ensureRunDir(), (e: unknown) => unsafe(e) && /mode 0755/.test((e as Error).message));
  await assert.rejects(createVmDir('child'), unsafe);
  await fs.rm(top, { recursive: true });
});

test('a run dir that is a symlink, or owned by another uid, is refused', async () => {
  const top = await scratch();
  await fs.mkdir(path.join(top, 'real'), { mode: 0o700 });
  await fs.symlink(path.join(top, 'real'), path.join(top, 'link'));
  process.env.FORKD_RUN_DIR = path.join(top, 'link');
  await assert.rejects(ensureRunDir(), (e: unknown) => unsafe(e) && /symlink/.test((e as Error).message));
  if (process.getuid?.() === 0) {
    await fs.mkdir(path.join(top, 'theirs'), { mode: 0o700 });
    await fs.chown(path.join(top, 'theirs'), 65534, 65534);
    process.env.FORKD_RUN_DIR = path.join(top, 'theirs');
    await assert.rejects(ensureRunDir(), (e: unknown) => unsafe(e) && /owned by uid 65534/.test((e as Error).message));
  }
  await fs.rm(top, { recursive: true });
});

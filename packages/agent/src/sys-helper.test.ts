/**
 * The system helper (sys-helper.c), compiled with the host's gcc as the image builder does, run
 * without privileges (as nobody when the tests run as root) so that no test can change the host's
 * clock or RNG: the privileged calls must then fail with EPERM and say so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SysHelper } from './sys-helper.js';

const SOURCE = fileURLToPath(new URL('./sys-helper.c', import.meta.url));
const EPERM = 1;

let dir = '';
let binary = '';
/** The helper, dropped to nobody when we are root. */
let unprivileged = '';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-sys-test-'));
  binary = path.join(dir, 'forkd-sys');
  const cc = spawnSync('gcc', ['-static', '-Os', '-s', '-Wall', '-Werror', '-o', binary, SOURCE], { encoding: 'utf8' });
  assert.equal(cc.status, 0, `gcc (apt-get install gcc libc6-dev): ${cc.error?.message ?? cc.stderr}`);
  unprivileged = path.join(dir, 'forkd-sys-nobody');
  const drop = process.getuid?.() === 0 ? 'setpriv --reuid=65534 --regid=65534 --clear-groups ' : '';
  fs.writeFileSync(unprivileged, `#!/bin/sh\nexec ${drop}${binary}\n`, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Feeds the chunks to a fresh helper, closes stdin, returns its stdout and exit code. */
function run(chunks: string[]): Promise<{ out: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const p = spawn(unprivileged, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ out, code }));
    void (async () => {
      for (const c of chunks) {
        p.stdin.write(c);
        await new Promise((r) => setTimeout(r, 20));
      }
      p.stdin.end();
    })();
  });
}

describe('forkd-sys (sys-helper.c)', () => {
  it('answers each line with its id, across split and batched writes, and exits on EOF', async () => {
    const { out, code } = await run(['1 ping\n2 pi', 'ng\n3 bogus\n4 clock 12\n', '5 entropy 0g\n6 clock 1 1000000000\n']);
    assert.equal(code, 0);
    assert.deepEqual(out.trimEnd().split('\n'), [
      '1 ok pong',
      '2 ok pong',
      '3 err unknown command bogus',
      '4 err clock: bad arguments',
      '5 err entropy: bad hex',
      '6 err clock: bad arguments',
    ]);
  });

  it('reports a refused clock_settime and RNG ioctl by name and errno', async () => {
    const { out } = await run([`7 clock ${Math.floor(Date.now() / 1000)} 5\n`, '8 entropy 00ff\n', `9 restore ${Math.floor(Date.now() / 1000)} 0 abcd\n`]);
    assert.deepEqual(out.trimEnd().split('\n'), [
      `7 err clock_settime: errno ${EPERM}`,
      `8 err RNDADDENTROPY: errno ${EPERM}`,
      `9 err clock=clock_settime: errno ${EPERM} rng=RNDADDENTROPY: errno ${EPERM}`,
    ]);
  });

  it('drops an over-long line and keeps serving', async () => {
    const { out } = await run([`10 entropy ${'ab'.repeat(6000)}\n`, '11 ping\n']);
    assert.equal(out.trimEnd().split('\n').at(-1), '11 ok pong');
  });

  it('works through the agent client, which tells the clock and RNG outcomes apart', async () => {
    const h = new SysHelper(unprivileged);
    try {
      h.start();
      assert.equal(await h.ping(), true);
      assert.match((await h.setClock(Date.now())) ?? '', /^err clock_settime: errno 1$/);
      assert.match((await h.restoreSystem(Date.now(), Buffer.alloc(32, 1))) ?? '', /^err clock=clock_settime: errno 1 rng=RNDADDENTROPY: errno 1$/);
    } finally {
      h.stop();
    }
  });
});

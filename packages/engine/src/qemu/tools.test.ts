import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';
import { qemuImgCreateOverlay, runTool } from './tools.js';
import { TailBuffer } from './tail.js';
import { parseQemuVersion, qemuVersion } from './version.js';

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;

test('runTool returns output; missing tools and failures are typed', async () => {
  assert.equal((await runTool('sh', ['-c', 'printf "%s" "$1"', 'sh', 'a b;$(x)'])).stdout, 'a b;$(x)');
  assert.equal((await runTool('cat', [], { input: 'piped' })).stdout, 'piped');
  await assert.rejects(runTool('forkd-no-such-tool', []), code('FORKD_E_TOOL_MISSING'));
  await assert.rejects(runTool('sh', ['-c', 'echo oops >&2; exit 3']), (e: unknown) => {
    assert.ok(code('FORKD_E_TOOL_FAILED')(e));
    const fe = e as ForkdError;
    assert.equal(fe.details?.exit_code, 3);
    assert.match(fe.message, /exited with 3: oops/);
    return true;
  });
  await assert.rejects(runTool('sleep', ['5'], { timeoutMs: 50 }), code('FORKD_E_TIMEOUT'));
});

test('runTool keeps only the tail of large output', async () => {
  const r = await runTool('sh', ['-c', 'head -c 100000 /dev/zero | tr "\\0" a; echo END'], { stdoutCapBytes: 10 });
  assert.equal(r.stdout, 'aaaaaaEND\n');
});

test('TailBuffer keeps the last cap bytes across chunk shapes', () => {
  const t = new TailBuffer(5);
  for (const s of ['ab', 'cd', 'efg', 'h']) t.write(Buffer.from(s));
  assert.equal(t.toString(), 'defgh');
  t.write(Buffer.from('0123456789'));
  assert.equal(t.toString(), '56789');
  assert.equal(t.dropped, 13);
});

test('qemu version is parsed (and the installed one is 7.x here)', async () => {
  const v = parseQemuVersion('QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright');
  assert.deepEqual(v, { version: '7.2.22', major: 7, minor: 2, micro: 22, pkg: 'Debian 1:7.2+dfsg-7+deb12u18+b3' });
  assert.equal(parseQemuVersion('QEMU emulator version 8.0.0\n').pkg, '');
  assert.throws(() => parseQemuVersion('nope'), ForkdError);
  assert.match(await qemuVersion(), /^\d+\.\d+\.\d+$/);
  await assert.rejects(qemuVersion('qemu-system-forkd-missing'), code('FORKD_E_QEMU_NOT_INSTALLED'));
});

test('qemuImgCreateOverlay makes a qcow2 backed by the given file', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-img-'));
  try {
    await runTool('qemu-img', ['create', '-q', '-f', 'raw', path.join(dir, 'base.raw'), '1M']);
    await qemuImgCreateOverlay(path.join(dir, 'top.qcow2'), 'base.raw', 'raw', { cwd: dir });
    const info = JSON.parse((await runTool('qemu-img', ['info', '--output=json', path.join(dir, 'top.qcow2')])).stdout) as { format: string; 'backing-filename': string };
    assert.equal(info.format, 'qcow2');
    assert.equal(info['backing-filename'], 'base.raw');
    await assert.rejects(qemuImgCreateOverlay(path.join(dir, 'x.qcow2'), path.join(dir, 'missing.raw'), 'raw'), code('FORKD_E_TOOL_FAILED'));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('a tool dies with the process that ran it (kill -9 of the owner leaves no child writing on)', async () => {
  const { spawn } = await import('node:child_process');
  const script = `
    import { runTool } from ${JSON.stringify(path.join(import.meta.dirname, 'tools.ts'))};
    void runTool('sh', ['-c', 'echo $$; exec sleep 60'], { onStdout: (d) => process.stdout.write(d) });
  `;
  const owner = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const toolPid = await new Promise<number>((resolve) => owner.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  assert.ok(alive(toolPid));
  owner.kill('SIGKILL');
  const deadline = Date.now() + 5_000;
  while (alive(toolPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const survived = alive(toolPid);
  if (survived) process.kill(toolPid, 'SIGKILL');
  assert.equal(survived, false, 'the tool outlived its owner');
});

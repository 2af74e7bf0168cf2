import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LIMITS } from '@forkd/protocol';
import { AgentClient } from './client.js';
import { startTestAgent, type TestAgent } from './test-agent.js';

const isCode = (code: string) => (e: { code?: string }) => e.code === code;

describe('agent files.* (real agent over --listen)', () => {
  let agent: TestAgent;
  let c: AgentClient;
  let dir: string;
  before(async () => {
    agent = await startTestAgent();
    c = await AgentClient.connect(agent.socketPath, { connectTimeoutMs: 10_000 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'forkd-files-'));
  });
  after(async () => {
    c?.close();
    await agent?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips binary data', async () => {
    const data = Buffer.from(Array.from({ length: 256 * 4 }, (_, i) => i % 256));
    const w = await c.writeFile(`${dir}/bin/x.dat`, data, { mkdirs: true, mode: 0o600 });
    assert.equal(w.size, data.length);
    assert.deepEqual(await c.readFile(`${dir}/bin/x.dat`), data);
    const st = await c.stat(`${dir}/bin/x.dat`);
    assert.equal(st.type, 'file');
    assert.equal(st.mode, 0o600);
    assert.equal(st.permissions, '-rw-------');
    assert.equal(st.size, data.length);
  });

  it('moves a multi-chunk file (> 4 MiB) both ways', async () => {
    const data = crypto.randomBytes(LIMITS.maxFileChunkBytes * 2 + 12345);
    await c.writeFile(`${dir}/big.bin`, data);
    assert.ok(fs.readFileSync(`${dir}/big.bin`).equals(data), 'written bytes match on disk');
    const back = await c.readFile(`${dir}/big.bin`);
    assert.ok(back.equals(data), 'read back matches');
    await assert.rejects(c.readFile(`${dir}/big.bin`, { maxBytes: 1024 }), isCode('FORKD_E_PAYLOAD_TOO_LARGE'));
  });

  it('reads pseudo-files whose stat size is 0 (/proc), and a path under a file is not found', async () => {
    const version = await c.readFile('/proc/version');
    assert.equal(version.toString(), fs.readFileSync('/proc/version', 'utf8'));
    assert.ok(version.length > 0);
    fs.writeFileSync(`${dir}/plain`, 'x');
    await assert.rejects(c.stat(`${dir}/plain/child`), isCode('FORKD_E_FILE_NOT_FOUND'));
    await assert.rejects(c.readFile(`${dir}/plain/child`), isCode('FORKD_E_FILE_NOT_FOUND'));
  });

  it('renames across filesystems (copy + remove, as mv) and says so once in errors', async () => {
    const other = fs.mkdtempSync('/dev/shm/forkd-files-');
    try {
      fs.writeFileSync(`${dir}/cross.txt`, 'moved');
      fs.mkdirSync(`${dir}/crossdir/sub`, { recursive: true });
      fs.writeFileSync(`${dir}/crossdir/sub/f`, 'deep');
      const e = await c.rename(`${dir}/cross.txt`, `${other}/cross.txt`);
      assert.deepEqual([e.type, fs.readFileSync(`${other}/cross.txt`, 'utf8'), fs.existsSync(`${dir}/cross.txt`)], ['file', 'moved', false]);
      await c.rename(`${dir}/crossdir`, `${other}/crossdir`);
      assert.equal(fs.readFileSync(`${other}/crossdir/sub/f`, 'utf8'), 'deep');
      assert.equal(fs.existsSync(`${dir}/crossdir`), false);
      await assert.rejects(c.rename(`${dir}/missing`, `${other}/x`), (err: { code?: string; message?: string }) => err.code === 'FORKD_E_FILE_NOT_FOUND');
      await assert.rejects(c.mkdir(`${other}/crossdir/sub/f/x`, false), (err: { message?: string }) => !/(\b[A-Z]{4,}\b).*\1/.test(err.message ?? ''));
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  });

  it('reads ranges with size and eof', async () => {
    fs.writeFileSync(`${dir}/r.txt`, '0123456789');
    const { result, payload } = await c.call('files.read', { path: `${dir}/r.txt`, offset: 3, length: 4 });
    assert.equal(payload.toString(), '3456');
    assert.deepEqual(result, { size: 10, bytes: 4, eof: false });
    const end = await c.call('files.read', { path: `${dir}/r.txt`, offset: 8 });
    assert.equal(end.payload.toString(), '89');
    assert.equal(end.result.eof, true);
  });

  it('writes at an offset without truncating', async () => {
    fs.writeFileSync(`${dir}/o.txt`, 'aaaaaaaa');
    await c.call('files.write', { path: `${dir}/o.txt`, offset: 2, truncate: false }, { payload: Buffer.from('XY') });
    assert.equal(fs.readFileSync(`${dir}/o.txt`, 'utf8'), 'aaXYaaaa');
    await c.writeFile(`${dir}/o.txt`, Buffer.from('z'));
    assert.equal(fs.readFileSync(`${dir}/o.txt`, 'utf8'), 'z');
    await c.writeFile(`${dir}/empty.txt`, Buffer.alloc(0));
    assert.equal(fs.readFileSync(`${dir}/empty.txt`).length, 0);
  });

  it('lists, mkdirs, renames and removes', async () => {
    assert.equal(await c.mkdir(`${dir}/t/a/b`), true);
    assert.equal(await c.mkdir(`${dir}/t/a/b`), false);
    fs.writeFileSync(`${dir}/t/a/b/f.txt`, 'hi');
    fs.symlinkSync('a', `${dir}/t/link`);
    const one = await c.list(`${dir}/t`);
    assert.deepEqual(one.entries.map((e) => [e.name, e.type]), [['a', 'dir'], ['link', 'symlink']]);
    assert.equal(one.entries[1]!.symlink_target, 'a');
    const deep = await c.list(`${dir}/t`, 3);
    assert.deepEqual(deep.entries.map((e) => e.path.slice(dir.length)), ['/t/a', '/t/link', '/t/a/b', '/t/a/b/f.txt']);
    assert.equal(deep.truncated, false);
    const moved = await c.rename(`${dir}/t/a/b/f.txt`, `${dir}/t/g.txt`);
    assert.equal(moved.path, `${dir}/t/g.txt`);
    assert.equal(moved.size, 2);
    await assert.rejects(c.remove(`${dir}/t/a`), isCode('FORKD_E_INVALID_ARGUMENT'));
    assert.equal(await c.remove(`${dir}/t/a`, true), true);
    assert.equal(await c.remove(`${dir}/t/a`, true), false);
    assert.equal(fs.existsSync(`${dir}/t/a`), false);
  });

  it('caps listings', async () => {
    fs.mkdirSync(`${dir}/many`);
    for (let i = 0; i < LIMITS.maxListEntries + 5; i++) fs.writeFileSync(`${dir}/many/${i}`, '');
    const l = await c.list(`${dir}/many`);
    assert.equal(l.entries.length, LIMITS.maxListEntries);
    assert.equal(l.truncated, true);
  });

  it('maps errors to codes', async () => {
    await assert.rejects(c.readFile(`${dir}/missing`), isCode('FORKD_E_FILE_NOT_FOUND'));
    await assert.rejects(c.stat(`${dir}/missing`), isCode('FORKD_E_FILE_NOT_FOUND'));
    await assert.rejects(c.list(`${dir}/missing`), isCode('FORKD_E_FILE_NOT_FOUND'));
    await assert.rejects(c.readFile(dir), (e: { code?: string; message: string; details?: unknown }) => e.code === 'FORKD_E_INVALID_ARGUMENT' && /EISDIR/.test(e.message) && JSON.stringify(e.details) === '{"method":"files.read"}');
    await assert.rejects(c.writeFile(`${dir}/no/such/dir/f`, Buffer.from('x')), isCode('FORKD_E_FILE_NOT_FOUND'));
    await assert.rejects(c.call('files.stat', { path: 'relative' }), isCode('FORKD_E_INVALID_ARGUMENT'));
  });
});

/**
 * The E2B-shaped Sandbox against a real daemon and real VMs (the fixture python snapshot):
 * lifecycle, commands (foreground, streamed, background both ways, exit codes, timeouts), files,
 * runCode persistence, envs, setTimeout, typed errors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Sandbox, CommandExitError, NotFoundError, InvalidArgumentError, TimeoutError, UnavailableError, type OutputMessage } from './index.js';

let d: TestDaemon;
let sb: Sandbox;
const conn = () => ({ socketPath: d.socketPath });
const suite = `sdk-${crypto.randomBytes(4).toString('hex')}`;

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  d = await startTestDaemon();
  sb = await Sandbox.create(d.tag, { ...conn(), envs: { FORKD_T_ENV: 'from-create' }, metadata: { suite, role: 'main' } });
});
after(async () => {
  await sb?.kill().catch(() => undefined);
  await d?.stop();
});

describe('lifecycle', () => {
  test('create, getInfo, connect, list, kill (static and instance)', async () => {
    const other = await Sandbox.create({ ...conn(), template: d.tag, metadata: { suite, role: 'other' }, timeoutMs: 120_000 });
    after(() => other.kill().catch(() => undefined));
    assert.match(other.sandboxId, /^sb-[0-9a-f]{16}$/);
    const info = await other.getInfo();
    assert.equal(info.sandboxId, other.sandboxId);
    assert.equal(info.templateId, d.tag);
    assert.equal(info.state, 'running');
    assert.deepEqual(info.metadata, { suite, role: 'other' });
    assert.ok(info.endAt && Math.abs(info.endAt.getTime() - Date.now() - 120_000) < 30_000, `endAt about 120 s from now: ${info.endAt?.toISOString()}`);

    const again = await Sandbox.connect(other.sandboxId, conn());
    assert.equal((await again.commands.run('echo connected')).stdout, 'connected\n');
    assert.equal(await again.isRunning(), true);

    const page = Sandbox.list({ ...conn(), query: { metadata: { suite } } });
    assert.equal(page.hasNext, true);
    const listed = await page.nextItems();
    assert.deepEqual(listed.map((s) => s.sandboxId).sort(), [sb.sandboxId, other.sandboxId].sort());
    assert.equal(page.hasNext, false);
    const onlyOther = await Sandbox.list({ ...conn(), query: { metadata: { suite, role: 'other' } } }).toArray();
    assert.deepEqual(onlyOther.map((s) => s.sandboxId), [other.sandboxId]);

    assert.equal(await Sandbox.kill(other.sandboxId, conn()), true);
    assert.equal(await Sandbox.kill(other.sandboxId, conn()), false, 'a second kill finds nothing');
    assert.equal(await again.isRunning(), false);
    assert.equal(await again.kill(), false);
    await assert.rejects(Sandbox.connect(other.sandboxId, conn()), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
  });

  test('setTimeout: the daemon kills the sandbox once it expires', async () => {
    const s = await Sandbox.create(d.tag, { ...conn(), metadata: { suite, role: 'expiring' } });
    after(() => s.kill().catch(() => undefined));
    await s.setTimeout(2000);
    const info = await s.getInfo();
    assert.ok(info.endAt && info.endAt.getTime() - Date.now() < 2500, 'endAt moved to about 2 s from now');
    assert.equal(await s.isRunning(), true);
    await until('the expired sandbox to be gone', async () => !(await s.isRunning()), 30_000);
    const left = await Sandbox.list({ ...conn(), query: { metadata: { suite, role: 'expiring' } } }).toArray();
    assert.deepEqual(left.filter((x) => x.state === 'running'), []);
  });
});

describe('commands', () => {
  test('foreground: stdout, stderr, bash syntax, envs from create and per call, cwd, stdin', async () => {
    assert.deepEqual(await sb.commands.run('echo out; echo err >&2'), { exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
    assert.equal((await sb.commands.run('[[ 2 -gt 1 ]] && echo bash')).stdout, 'bash\n');
    assert.equal((await sb.commands.run('echo "$FORKD_T_ENV $PER_CALL"', { envs: { PER_CALL: 'call' } })).stdout, 'from-create call\n');
    assert.equal((await sb.commands.run('pwd', { cwd: '/tmp' })).stdout, '/tmp\n');
    assert.equal((await sb.commands.run('tr a-z A-Z', { stdin: 'shout' })).stdout, 'SHOUT');
  });

  test('non-zero exit throws CommandExitError with the output', async () => {
    await assert.rejects(sb.commands.run('echo partial; echo why >&2; exit 3'), (e: CommandExitError) => {
      assert.ok(e instanceof CommandExitError);
      assert.deepEqual([e.code, e.exitCode, e.stdout, e.stderr], ['FORKD_E_COMMAND_FAILED', 3, 'partial\n', 'why\n']);
      return true;
    });
  });

  test('timeoutMs: a command that runs too long throws TimeoutError', async () => {
    const t = Date.now();
    await assert.rejects(sb.commands.run('sleep 30', { timeoutMs: 1000 }), (e: TimeoutError) => e instanceof TimeoutError && e.code === 'FORKD_E_TIMEOUT');
    assert.ok(Date.now() - t < 15_000, 'gave up near the timeout, not after the sleep');
  });

  test('streaming: onStdout/onStderr get output while the command runs', async () => {
    const chunks: Array<[string, number]> = [];
    const errs: string[] = [];
    const r = await sb.commands.run('for i in 1 2 3; do echo line$i; sleep 0.4; done; echo bye >&2', {
      onStdout: (s) => chunks.push([s, Date.now()]),
      onStderr: (s) => errs.push(s),
    });
    const end = Date.now();
    assert.equal(chunks.map(([s]) => s).join(''), 'line1\nline2\nline3\n');
    assert.equal(r.stdout, 'line1\nline2\nline3\n');
    assert.equal(errs.join(''), 'bye\n');
    assert.ok(end - chunks[0]![1] >= 600, `the first line arrived ${end - chunks[0]![1]} ms before the end (streamed, not at exit)`);
  });

  test('streaming keeps multi-byte characters whole across chunk boundaries', async () => {
    // 3-byte characters: 64 KiB chunks end inside one.
    const want = '€'.repeat(200_000);
    const chunks: string[] = [];
    const r = await sb.commands.run(`python3 -c "import sys; sys.stdout.write('€' * 200000)"`, { onStdout: (s) => chunks.push(s) });
    assert.ok(chunks.length > 1, 'came in several chunks');
    assert.equal(chunks.join(''), want);
    assert.equal(r.stdout, want);
  });

  test('background via processes: pid, listed, wait, exit code, kill by pid', async () => {
    const h = await sb.commands.run('sleep 0.5; echo done', { background: true });
    assert.ok(h.pid > 0);
    assert.ok((await sb.commands.list()).some((p) => p.pid === h.pid));
    assert.deepEqual(await h.wait(), { exitCode: 0, stdout: 'done\n', stderr: '' });
    assert.equal(h.exitCode, 0);
    assert.equal(h.stdout, 'done\n');

    const bad = await sb.commands.run('echo no >&2; exit 4', { background: true });
    await assert.rejects(bad.wait(), (e: CommandExitError) => e instanceof CommandExitError && e.exitCode === 4 && e.stderr === 'no\n');

    const long = await sb.commands.run('sleep 60', { background: true });
    assert.equal(await sb.commands.kill(long.pid), true);
    await assert.rejects(long.wait(), (e: CommandExitError) => e instanceof CommandExitError && e.exitCode === -1);
    assert.equal(await sb.commands.kill(long.pid), false, 'already gone');
    assert.ok(!(await sb.commands.list()).some((p) => p.pid === long.pid));
  });

  test('background streamed: live output, kill() aborts the call and the guest process group dies', async () => {
    const seen: string[] = [];
    const h = await sb.commands.run('echo start; sleep 60; echo never', { background: true, onStdout: (s) => seen.push(s) });
    assert.ok(h.pid > 0, `pid from the wrapper: ${h.pid}`);
    await until('the first line', async () => seen.join('').includes('start'));
    assert.equal(h.stdout, 'start\n');
    assert.equal(h.stderr, '', 'the pid line is not part of stderr');
    assert.ok((await sb.commands.list()).some((p) => p.pid === h.pid));
    await sb.commands.run(`kill -0 -- -${h.pid}`); // the process group exists
    assert.equal(await h.kill(), true);
    await assert.rejects(h.wait(), (e: CommandExitError) => e instanceof CommandExitError && e.exitCode === -1);
    await until('the process group to be gone', async () => sb.commands.run(`kill -0 -- -${h.pid}`).then(() => false, (e: unknown) => e instanceof CommandExitError));
    assert.ok(!seen.join('').includes('never'));
  });

  test('background streamed that finishes: wait() gives the result', async () => {
    const h = await sb.commands.run('cat; echo err >&2; exit 0', { background: true, stdin: 'piped' });
    assert.deepEqual(await h.wait(), { exitCode: 0, stdout: 'piped', stderr: 'err\n' });
    assert.equal(await h.kill(), false);
  });
});

describe('files', () => {
  test('text and binary round trips (a few MB), write entries, stream read', async () => {
    const info = await sb.files.write('/tmp/sdk/a/hello.txt', 'héllo\n');
    assert.deepEqual(info, { name: 'hello.txt', path: '/tmp/sdk/a/hello.txt', type: 'file', size: 7 });
    assert.equal(await sb.files.read('/tmp/sdk/a/hello.txt'), 'héllo\n');

    const big = crypto.randomBytes(5 * 1024 * 1024 + 123);
    await sb.files.write('/tmp/sdk/big.bin', big);
    const back = await sb.files.read('/tmp/sdk/big.bin', { format: 'bytes' });
    assert.ok(back instanceof Uint8Array);
    assert.equal(Buffer.compare(Buffer.from(back), big), 0);
    const sha = (await sb.commands.run('sha256sum /tmp/sdk/big.bin')).stdout.split(' ')[0];
    assert.equal(sha, crypto.createHash('sha256').update(big).digest('hex'), 'the guest has the same bytes');

    const parts: Uint8Array[] = [];
    const stream = await sb.files.read('/tmp/sdk/big.bin', { format: 'stream' });
    for await (const c of stream as unknown as AsyncIterable<Uint8Array>) parts.push(c);
    assert.equal(Buffer.compare(Buffer.concat(parts), big), 0);

    const many = await sb.files.write([{ path: '/tmp/sdk/m1', data: 'one' }, { path: '/tmp/sdk/m2', data: new Uint8Array([0, 1, 2]) }]);
    assert.deepEqual(many.map((w) => w.size), [3, 3]);
    assert.deepEqual([...(await sb.files.read('/tmp/sdk/m2', { format: 'bytes' }))], [0, 1, 2]);
  });

  test('exists, list, getInfo, makeDir, rename, remove', async () => {
    await sb.files.write('/tmp/sdk2/x.txt', 'x');
    assert.equal(await sb.files.exists('/tmp/sdk2/x.txt'), true);
    assert.equal(await sb.files.exists('/tmp/sdk2/nope'), false);
    assert.equal(await sb.files.makeDir('/tmp/sdk2/sub/deeper'), true);
    assert.equal(await sb.files.makeDir('/tmp/sdk2/sub/deeper'), false);
    const top = await sb.files.list('/tmp/sdk2');
    assert.deepEqual(top.map((e) => [e.name, e.type]).sort(), [['sub', 'dir'], ['x.txt', 'file']]);
    const deep = await sb.files.list('/tmp/sdk2', { depth: 2 });
    assert.ok(deep.some((e) => e.path === '/tmp/sdk2/sub/deeper' && e.type === 'dir'));
    const st = await sb.files.getInfo('/tmp/sdk2/x.txt');
    assert.equal(st.size, 1);
    assert.ok(st.modifiedTime instanceof Date && Math.abs(st.modifiedTime.getTime() - Date.now()) < 120_000);
    const moved = await sb.files.rename('/tmp/sdk2/x.txt', '/tmp/sdk2/sub/y.txt');
    assert.equal(moved.path, '/tmp/sdk2/sub/y.txt');
    assert.equal(await sb.files.exists('/tmp/sdk2/x.txt'), false);
    await sb.files.remove('/tmp/sdk2');
    assert.equal(await sb.files.exists('/tmp/sdk2'), false);
    await assert.rejects(sb.files.read('/tmp/sdk2/sub/y.txt'), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_FILE_NOT_FOUND');
  });
});

describe('runCode', () => {
  test('state persists between calls; the parent snapshot state is there; output and errors', async () => {
    const set = await sb.runCode('sdk_x = 41\nprint("set")');
    assert.deepEqual(set.results, []);
    assert.deepEqual(set.logs.stdout, ['set\n']);
    assert.equal((await sb.runCode('sdk_x + 1')).text, '42');
    assert.equal((await sb.runCode('forkd_parent_marker')).text, '424242');
    const arr = await sb.runCode('np.arange(4).tolist()');
    assert.deepEqual(arr.results[0]!.json, [0, 1, 2, 3]);
    assert.equal((await sb.runCode('import os; os.environ.get("FORKD_T_ENV")')).text, "'from-create'");

    const lines: OutputMessage[] = [];
    const err = await sb.runCode('print("before")\n1/0', { onStdout: (m) => lines.push(m) });
    assert.equal(err.error?.name, 'ZeroDivisionError');
    assert.match(err.error!.traceback, /ZeroDivisionError/);
    assert.deepEqual(lines.map((m) => m.line), ['before\n']);

    const js = await sb.runCode('jsParentMarker + "!"', { language: 'javascript' });
    assert.match(js.text ?? '', /from-parent!/);
    const ev = await sb.eval('sdk_x * 2');
    assert.equal(ev.result, '82');
  });
});

describe('typed errors', () => {
  test('unknown id, invalid id, invalid tag, unknown tag, no daemon', async () => {
    await assert.rejects(Sandbox.connect('sb-0000000000000000', conn()), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
    await assert.rejects(Sandbox.connect('not-an-id', conn()), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && /^FORKD_E_INVALID/.test(e.code));
    await assert.rejects(Sandbox.create('bad tag!', conn()), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && /^FORKD_E_INVALID/.test(e.code));
    await assert.rejects(Sandbox.create('no-such-snapshot-xyz', conn()), (e: NotFoundError) => e instanceof NotFoundError && e.code === 'FORKD_E_SNAPSHOT_NOT_FOUND');
    await assert.rejects(sb.commands.run('true', { timeoutMs: -5 }), (e: InvalidArgumentError) => e instanceof InvalidArgumentError);
    await assert.rejects(Sandbox.list({ socketPath: `${d.dir}/nobody.sock` }).toArray(), (e: UnavailableError) => e instanceof UnavailableError && e.code === 'FORKD_E_UNAVAILABLE');
  });
});

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { routes } from '@forkd/api';
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';
import { raw, errorCode, type RawReply } from './testing/http.js';

let d: TestDaemon;
let c: Controller;
let id = '';

before(async () => {
  d = await startTestDaemon();
  c = new Controller({ socketPath: d.socketPath });
  [{ id }] = (await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 })) as unknown as [{ id: string }];
});
after(async () => {
  await d?.stop();
});

const J = { 'content-type': 'application/json' };
const post = (path: string, body: unknown) => raw(d, { method: 'POST', path, body: typeof body === 'string' ? body : JSON.stringify(body), headers: J });
function expectError(r: RawReply, status: number, code: string, what: string): void {
  assert.equal(r.status, status, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(errorCode(r), code, `${what}: ${r.text.slice(0, 300)}`);
  assert.equal(typeof (r.json as { error: { message: unknown } }).error.message, 'string');
}

test('bad inputs on every kind of endpoint get a clear 4xx with a stable code', async () => {
  const unknown = 'sb-0123456789abcdef';
  expectError(await raw(d, { method: 'GET', path: '/v1/nope' }), 404, 'FORKD_E_NOT_FOUND', 'unknown route');
  expectError(await raw(d, { method: 'GET', path: '/v1/sandboxes/not-an-id' }), 400, 'FORKD_E_INVALID_ARGUMENT', 'malformed id');
  expectError(await raw(d, { method: 'GET', path: `/v1/sandboxes/${unknown}` }), 404, 'FORKD_E_SANDBOX_NOT_FOUND', 'unknown id');
  expectError(await raw(d, { method: 'DELETE', path: `/v1/sandboxes/${unknown}` }), 404, 'FORKD_E_SANDBOX_NOT_FOUND', 'kill unknown');
  expectError(await post(`/v1/sandboxes/${unknown}/exec`, { cmd: 'true' }), 404, 'FORKD_E_SANDBOX_NOT_FOUND', 'exec unknown');
  expectError(await raw(d, { method: 'GET', path: '/v1/snapshots/..%2F..%2Fetc' }), 400, 'FORKD_E_INVALID_ARGUMENT', 'traversal tag');
  expectError(await raw(d, { method: 'GET', path: '/v1/snapshots/no-such-tag/info' }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'unknown tag');
  expectError(await raw(d, { method: 'DELETE', path: '/v1/snapshots/no-such-tag' }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'delete unknown tag');
  expectError(await raw(d, { method: 'GET', path: '/v1/jobs/job-0123456789abcdef' }), 404, 'FORKD_E_JOB_NOT_FOUND', 'unknown job');
  expectError(await post('/v1/sandboxes', { snapshot_tag: d.tag, n: 0 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'n=0');
  expectError(await post('/v1/sandboxes', { snapshot_tag: d.tag, n: 1001 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'n=1001');
  expectError(await post('/v1/sandboxes', { snapshot_tag: d.tag, n: 1.5 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'n fractional');
  expectError(await post('/v1/sandboxes', { snapshot_tag: 'nope' }), 404, 'FORKD_E_SNAPSHOT_NOT_FOUND', 'spawn unknown tag');
  expectError(await post('/v1/sandboxes', { snapshot_tag: d.tag, surprise: 1 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'unknown field');
  expectError(await post('/v1/sandboxes', { snapshot_tag: d.tag, prewarm: true }), 400, 'FORKD_E_INVALID_ARGUMENT', 'unsupported forkd option');
  expectError(await post('/v1/sandboxes/sb-0123456789abcdef/ports', { port: 0 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'port 0');
  expectError(await post('/v1/sandboxes', '{"snapshot_tag": '), 400, 'FORKD_E_INVALID_ARGUMENT', 'truncated JSON');
  expectError(await raw(d, { method: 'POST', path: '/v1/sandboxes', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 400, 'FORKD_E_INVALID_ARGUMENT', 'form body');
  // The 413 comes from the declared length, before the body is read: send the head of a 9 MiB body
  // only (writing all of it races the server closing the connection: the client then sees EPIPE).
  const big = JSON.stringify({ snapshot_tag: d.tag, metadata: { k: 'x'.repeat(9 * 1024 * 1024) } });
  expectError(await raw(d, { method: 'POST', path: '/v1/sandboxes', body: big.slice(0, 4096), headers: { ...J, 'content-length': String(Buffer.byteLength(big)) }, timeoutMs: 10_000 }), 413, 'FORKD_E_PAYLOAD_TOO_LARGE', '9 MiB JSON');
  expectError(await post(`/v1/sandboxes/${id}/exec`, { cmd: 'true', timeout_secs: 100_000 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'exec timeout above the cap');
  expectError(await post(`/v1/sandboxes/${id}/exec`, { cmd: 'true', args: ['true'] }), 400, 'FORKD_E_INVALID_ARGUMENT', 'both args and cmd');
  expectError(await post(`/v1/sandboxes/${id}/exec`, {}), 400, 'FORKD_E_INVALID_ARGUMENT', 'neither args nor cmd');
  expectError(await post(`/v1/sandboxes/${id}/exec`, { args: [] }), 400, 'FORKD_E_INVALID_ARGUMENT', 'empty argv');
  expectError(await post(`/v1/sandboxes/${id}/exec`, { cmd: 'true', envs: { 'BAD-NAME': 'x' } }), 400, 'FORKD_E_INVALID_ARGUMENT', 'bad env name');
  expectError(await post(`/v1/sandboxes/${id}/eval`, { code: 1 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'eval code not a string');
  expectError(await post(`/v1/sandboxes/${id}/eval`, { code: '1', language: 'ruby' }), 400, 'FORKD_E_INVALID_ARGUMENT', 'eval unknown language');
  expectError(await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files?path=relative/x` }), 400, 'FORKD_E_INVALID_ARGUMENT', 'relative file path');
  expectError(await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files?path=/no/such/file` }), 404, 'FORKD_E_FILE_NOT_FOUND', 'missing file');
  expectError(await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files?path=/etc` }), 400, 'FORKD_E_INVALID_ARGUMENT', 'download a directory');
  expectError(await raw(d, { method: 'PUT', path: `/v1/sandboxes/${id}/files?path=/root/big`, body: 'x', headers: { 'content-type': 'application/octet-stream', 'content-length': String(300 * 1024 * 1024) }, timeoutMs: 10_000 }), 413, 'FORKD_E_PAYLOAD_TOO_LARGE', 'upload over the cap');
  expectError(await post(`/v1/sandboxes/${id}/processes/p999/wait`, { timeout_secs: 1 }), 404, 'FORKD_E_NOT_FOUND', 'unknown process handle');
  expectError(await post(`/v1/sandboxes/${id}/timeout`, { timeout_ms: 5 }), 400, 'FORKD_E_INVALID_ARGUMENT', 'timeout too short');
  expectError(await post('/v1/snapshots', { tag: 'x', recipe: '../../etc/passwd' }), 400, 'FORKD_E_INVALID_ARGUMENT', 'recipe path');
  expectError(await post('/v1/snapshots', { tag: 'x', recipe: 'no-such-recipe' }), 404, 'FORKD_E_RECIPE_NOT_FOUND', 'unknown recipe');
  expectError(await post('/v1/snapshots', { tag: d.tag, recipe: 'python' }), 409, 'FORKD_E_SNAPSHOT_EXISTS', 'tag exists');
  expectError(await post('/v1/snapshots', { tag: 'small', recipe: 'python', mem_mib: 128 }), 400, 'FORKD_E_MEMORY_TOO_SMALL', 'memory below the recipe minimum');
  expectError(await raw(d, { method: 'DELETE', path: `/v1/snapshots/${d.tag}` }), 409, 'FORKD_E_IN_USE', 'delete a snapshot with live sandboxes');
  expectError(await raw(d, { method: 'DELETE', path: `/v1/snapshots/${d.tag}?cascade=maybe` }), 400, 'FORKD_E_INVALID_ARGUMENT', 'bad query flag');
  // Nothing half-done: the refused snapshot creations left no snapshot and no job.
  assert.deepEqual((await c.listSnapshots()).filter((s) => ['x', 'small'].includes(s.tag)), []);
});

test('random bodies, queries and ids at every endpoint never get a 5xx (but 501 for features not built)', async () => {
  const [victim] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 1 });
  const ids = [victim!.id, 'sb-0123456789abcdef', 'x', '..', 'sb-%00', 'job-0123456789abcdef'];
  const tags = [d.tag, 'nope', '..', '.hidden', 'a/b', 'x'.repeat(80)];
  const entries = Object.entries(routes).filter(([name]) => name !== 'metrics');
  const pending = new Set(['branch', 'fork', 'compactSnapshot', 'diffSnapshot', 'listWorkspaces', 'createWorkspace', 'getWorkspace', 'deleteWorkspace', 'suspendWorkspace', 'resumeWorkspace']);
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...entries),
      fc.oneof(fc.json(), fc.string(), fc.constant('')),
      fc.dictionary(fc.constantFrom('path', 'depth', 'cascade', 'force', 'tag', 'recursive', 'mode', 'metadata', 'zz'), fc.string({ maxLength: 30 })),
      fc.constantFrom(...ids),
      fc.constantFrom(...tags),
      fc.constantFrom('h', 'p1', '../x'),
      async ([name, r], body, query, sid, tag, handle) => {
        const p = r.path.replace(':id', encodeURIComponent(sid)).replace(':tag', encodeURIComponent(tag)).replace(':handle', encodeURIComponent(handle)).replace(':name', encodeURIComponent(tag));
        // GET /v1/events streams until the client leaves (events.integration.test.ts reads it); here its JSON page.
        const qs = new URLSearchParams(name === 'events' ? { ...query, follow: 'false' } : query).toString();
        const res = await raw(d, { method: r.method, path: `${p}${qs ? `?${qs}` : ''}`, ...(r.method === 'GET' || r.method === 'DELETE' ? {} : { body, headers: { 'content-type': r.method === 'PUT' ? 'application/octet-stream' : 'application/json' } }) });
        const ok = res.status < 500 || (res.status === 501 && pending.has(name));
        assert.ok(ok, `${name} ${r.method} ${p}?${qs} body=${body.slice(0, 200)} -> ${res.status} ${res.text.slice(0, 300)}`);
        if (res.status >= 400) assert.match(errorCode(res) ?? '', /^FORKD_E_[A-Z_]+$/, `${name}: error body without a code: ${res.text.slice(0, 200)}`);
      },
    ),
    { numRuns: 400 },
  );
  await c.killSandbox(victim!.id).catch(() => undefined);
});

test('exec, eval, processes and files behave and report through the API', async () => {
  const ex = await c.exec(id, { args: ['sh', '-c', 'echo $0 $FOO; exit 4', 'argv0'], envs: { FOO: 'bar' } });
  assert.deepEqual([ex.stdout, ex.exit_code, ex.error], ['argv0 bar\n', 4, null]);
  const missing = await c.exec(id, { args: ['/no/such/binary'] });
  assert.equal(missing.exit_code, null);
  assert.match(missing.error ?? '', /ENOENT|not found/);
  const killed = await c.exec(id, { cmd: 'kill -9 $$' });
  assert.deepEqual([killed.exit_code, killed.signal], [null, 'SIGKILL']);
  const slow = await c.exec(id, { cmd: 'sleep 5', timeout_secs: 0.5 });
  assert.equal(slow.timed_out, true);
  const stdin = await c.exec(id, { args: ['cat'], stdin: 'from stdin' });
  assert.equal(stdin.stdout, 'from stdin');
  const chunks: string[] = [];
  const streamed = await c.execStream(id, { cmd: 'echo one; sleep 0.3; echo two >&2; exit 2' }, { onStdout: (s) => chunks.push(`o:${s}`), onStderr: (s) => chunks.push(`e:${s}`) });
  assert.deepEqual(chunks, ['o:one\n', 'e:two\n']);
  assert.equal(streamed.exit_code, 2);
  const ev = await c.eval(id, { code: 'z = 7\nz * forkd_parent_marker' });
  assert.equal(ev.result, String(7 * 424242));
  assert.equal(ev.result_json, 7 * 424242);
  assert.equal((await c.eval(id, { code: 'z' })).result, '7');
  const js = await c.eval(id, { code: '({a: [1, 2]})', language: 'js' });
  assert.deepEqual(js.result_json, { a: [1, 2] });
  const bad = await c.eval(id, { code: 'raise ValueError("boom")' });
  assert.deepEqual([bad.exit_code, bad.error_type, bad.error], [1, 'ValueError', 'boom']);
  assert.match(bad.traceback ?? '', /ValueError: boom/);

  const bg = await c.startProcess(id, { cmd: 'echo started; sleep 30' });
  assert.ok((await c.listProcesses(id)).some((p) => p.handle === bg.handle && p.running));
  await new Promise((r) => setTimeout(r, 500)); // let it print before it is killed
  assert.equal((await c.killProcess(id, bg.handle)).killed, true);
  const waited = await c.waitProcess(id, bg.handle, 10);
  assert.equal(waited.stdout, 'started\n');

  const payload = Buffer.alloc(9 * 1024 * 1024 + 17);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
  const w = await c.writeFile(id, '/root/sub/dir/blob.bin', payload, { mode: 0o600 });
  assert.equal(w.size, payload.length);
  assert.ok((await c.readFile(id, '/root/sub/dir/blob.bin')).equals(payload));
  const st = await c.statFile(id, '/root/sub/dir/blob.bin');
  assert.deepEqual([st.type, st.size, st.permissions], ['file', payload.length, '-rw-------']);
  const ls = await c.listFiles(id, '/root/sub/dir');
  assert.deepEqual(ls.entries.map((e) => e.name), ['blob.bin'], 'a temporary upload file was left behind');
  await c.renameFile(id, '/root/sub/dir/blob.bin', '/root/sub/moved.bin');
  assert.equal((await c.removeFile(id, '/root/sub', true)).removed, true);
  assert.equal((await c.mkdir(id, '/root/a/b/c')).created, true);
  await assert.rejects(c.statFile(id, '/root/sub'), (e: { code?: string }) => e.code === 'FORKD_E_FILE_NOT_FOUND');
});

test('a sandbox with a timeout is killed when it expires; setTimeout extends it', async () => {
  const [a, b] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 2, timeout_ms: 2500, metadata: { t: 'timeout' } });
  assert.ok(a && b);
  assert.ok(a.expires_at_unix_ms! > Date.now());
  await c.setSandboxTimeout(b.id, 60_000);
  assert.equal((await c.listSandboxes({ metadata: 't=timeout' })).length, 2);
  await new Promise((r) => setTimeout(r, 4000));
  await assert.rejects(c.getSandbox(a.id), (e: { code?: string }) => e.code === 'FORKD_E_SANDBOX_NOT_FOUND');
  assert.equal((await c.getSandbox(b.id)).status, 'running');
  await c.killSandbox(b.id);
  const metrics = await c.metrics();
  assert.match(metrics, /forkd_sandboxes_ended_total\{reason="timeout"\} [1-9]/);
});

test('metrics expose counters and histograms of what users feel', async () => {
  await raw(d, { method: 'GET', path: '/v1/sandboxes/sb-0123456789abcdef' });
  const m = await c.metrics();
  for (const re of [
    /forkd_spawn_ready_seconds_bucket\{le="[0-9.]+"\} \d+/,
    /forkd_spawn_ready_seconds_count [1-9]/,
    /forkd_agent_call_seconds_count\{call="exec"\} [1-9]/,
    /forkd_agent_call_seconds_count\{call="eval"\} [1-9]/,
    /forkd_errors_total\{code="FORKD_E_SANDBOX_NOT_FOUND"\} [1-9]/,
    /forkd_sandboxes_active [1-9]/,
    /forkd_snapshots [1-9]/,
    /forkd_http_requests_total\{route="\/v1\/sandboxes\/:id",status="404"\} [1-9]/,
    /forkd_daemon_process_resident_memory_bytes \d+/,
  ]) assert.match(m, re);
});

test('100 concurrent calls on 5 sandboxes all succeed; a flood on one sandbox is limited, not queued forever', async () => {
  const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 5 });
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => {
    const sb = sbs[i % sbs.length]!;
    return i % 2 ? c.exec(sb.id, { cmd: `echo ${i}` }).then((r) => r.stdout.trim() === String(i)) : c.eval(sb.id, { code: `${i} + 1` }).then((r) => r.result === String(i + 1));
  }));
  assert.equal(results.filter(Boolean).length, 100);
  // 80 one-second calls at once on one sandbox: 64 run (the per-sandbox cap), the rest get 429 at once.
  const flood = await Promise.all(Array.from({ length: 80 }, () => c.exec(sbs[0]!.id, { cmd: 'sleep 1' }).then(() => 'ok', (e: { code?: string }) => e.code)));
  assert.equal(flood.filter((r) => r === 'ok').length, 64, flood.join(','));
  assert.equal(flood.filter((r) => r === 'FORKD_E_RATE_LIMITED').length, 16);
  await Promise.all(sbs.map((s) => c.killSandbox(s.id)));
});

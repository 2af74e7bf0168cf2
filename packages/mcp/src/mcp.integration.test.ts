/**
 * The MCP server as a client sees it: spawned from source over stdio by the MCP SDK's own
 * StdioClientTransport, pointed at a real test daemon with FORKD_URL, driving real sandboxes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller } from '@forkd/sdk';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MAIN = path.join(ROOT, 'packages', 'mcp', 'src', 'main.ts');
const NODE_ARGS = ['--conditions=source', '--import', 'tsx', MAIN];
/** `forkd mcp`, the CLI entry, from source. */
const CLI_ARGS = ['--conditions=source', '--import', 'tsx', path.join(ROOT, 'packages', 'cli', 'src', 'index.ts'), 'mcp'];

let d: TestDaemon;
let client: Client;
const protocolErrors: Error[] = [];
const stderr: string[] = [];
let sandboxId: string | undefined;

type Content = Array<{ type: string; text: string }>;
async function call(name: string, args: Record<string, unknown>): Promise<{ isError: boolean; text: string; json: any }> {
  const r = await client.callTool({ name, arguments: args });
  const text = (r.content as Content)[0]!.text;
  let json: unknown = null;
  if (!r.isError) json = JSON.parse(text);
  return { isError: r.isError === true, text, json };
}
async function ok(name: string, args: Record<string, unknown>): Promise<any> {
  const r = await call(name, args);
  assert.equal(r.isError, false, `${name} failed: ${r.text}`);
  return r.json;
}

before(async () => {
  d = await startTestDaemon();
  const transport = new StdioClientTransport({ command: process.execPath, args: NODE_ARGS, cwd: ROOT, env: { ...process.env, ...d.env } as Record<string, string>, stderr: 'pipe' });
  transport.stderr?.on('data', (c: Buffer) => stderr.push(c.toString('utf8')));
  client = new Client({ name: 'forkd-mcp-test', version: '0' });
  // Anything on the server's stdout that is not a JSON-RPC message surfaces here.
  client.onerror = (e) => protocolErrors.push(e);
  await client.connect(transport);
});
after(async () => {
  if (sandboxId) await call('kill_sandbox', { sandbox_id: sandboxId }).catch(() => undefined);
  await client?.close();
  await d?.stop();
  assert.deepEqual(protocolErrors.map((e) => e.message), [], `stderr was:\n${stderr.join('')}`);
});

test('lists the tools', async () => {
  const names = (await client.listTools()).tools.map((t) => t.name).sort();
  assert.deepEqual(names, [
    'branch_sandbox', 'create_snapshot', 'create_workspace', 'delete_snapshot', 'delete_workspace', 'eval_code', 'exec_command', 'expose_port', 'fork_sandbox', 'get_job', 'get_sandbox', 'get_sandbox_metrics',
    'kill_sandbox', 'list_files', 'list_sandboxes', 'list_snapshots', 'list_workspaces', 'ping_sandbox', 'pull_snapshot', 'push_snapshot', 'read_file', 'recent_events', 'resume_workspace', 'run_code', 'snapshot_info', 'snapshot_tree',
    'spawn_sandboxes', 'suspend_workspace', 'wait_for_text', 'write_file',
  ]);
});

test('spawn, exec, eval, files, wait_for_text, kill', async () => {
  assert.ok((await ok('list_snapshots', {})).some((s: { tag: string }) => s.tag === d.tag));
  const [sb] = await ok('spawn_sandboxes', { snapshot_tag: d.tag, metadata: { via: 'mcp' } });
  sandboxId = sb.id as string;
  assert.ok(sb.expires_at_unix_ms > Date.now(), 'MCP sandboxes get a default timeout');
  assert.equal((await ok('ping_sandbox', { sandbox_id: sandboxId })).pong, true);
  assert.equal((await ok('get_sandbox', { sandbox_id: sandboxId })).id, sandboxId);
  assert.ok((await ok('list_sandboxes', { metadata: 'via=mcp' })).some((s: { id: string }) => s.id === sandboxId));

  const ex = await ok('exec_command', { sandbox_id: sandboxId, cmd: 'echo hi && uname -s' });
  assert.deepEqual([ex.stdout, ex.exit_code], ['hi\nLinux\n', 0]);
  const argv = await ok('exec_command', { sandbox_id: sandboxId, args: ['sh', '-c', 'echo "$0" >&2; exit 3', 'a b;c'] });
  assert.deepEqual([argv.stderr, argv.exit_code], ['a b;c\n', 3], 'argv needs no quoting; a non-zero exit is a result');

  assert.equal((await ok('eval_code', { sandbox_id: sandboxId, code: 'mcp_v = forkd_parent_marker + 1' })).error, null);
  assert.equal((await ok('eval_code', { sandbox_id: sandboxId, code: 'mcp_v' })).result, '424243');

  assert.equal((await ok('write_file', { sandbox_id: sandboxId, path: '/tmp/mcp/a.txt', content: 'héllo' })).size, 6);
  assert.deepEqual(await ok('read_file', { sandbox_id: sandboxId, path: '/tmp/mcp/a.txt' }), { path: '/tmp/mcp/a.txt', size: 6, truncated: false, encoding: 'utf8', content: 'héllo' });
  const bin = Buffer.from([0, 255, 1, 254, 10]).toString('base64');
  await ok('write_file', { sandbox_id: sandboxId, path: '/tmp/mcp/b.bin', content: bin, encoding: 'base64', mode: '600' });
  assert.equal((await ok('read_file', { sandbox_id: sandboxId, path: '/tmp/mcp/b.bin', encoding: 'base64' })).content, bin);
  const head = await ok('read_file', { sandbox_id: sandboxId, path: '/tmp/mcp/a.txt', max_bytes: 2 });
  assert.deepEqual([head.content[0], head.truncated, head.size], ['h', true, 6], 'cut at max_bytes, whole size reported');
  const listed = await ok('list_files', { sandbox_id: sandboxId, path: '/tmp/mcp' });
  assert.deepEqual(listed.entries.map((e: { name: string; permissions: string }) => e.name).sort(), ['a.txt', 'b.bin']);

  // A path a shell would execute: wait_for_text must treat it as data.
  const odd = '/tmp/mcp/odd $(touch /tmp/mcp/pwned) `id`.log';
  await ok('write_file', { sandbox_id: sandboxId, path: odd, content: 'starting\n' });
  await ok('exec_command', { sandbox_id: sandboxId, cmd: '(sleep 1; echo "line READY-42 here" >> "$P") >/dev/null 2>&1 &', envs: { P: odd } });
  const w = await ok('wait_for_text', { sandbox_id: sandboxId, path: odd, marker: 'READY-42', timeout_secs: 30 });
  assert.equal(w.found, true);
  assert.match(w.excerpt, /line READY-42 here/);
  assert.ok(w.elapsed_ms >= 500, `waited for the append (${w.elapsed_ms} ms)`);
  const pwned = await ok('exec_command', { sandbox_id: sandboxId, args: ['test', '-e', '/tmp/mcp/pwned'] });
  assert.equal(pwned.exit_code, 1, 'nothing in the path was executed');
  const miss = await ok('wait_for_text', { sandbox_id: sandboxId, path: '/tmp/mcp/never.log', marker: 'x', timeout_secs: 1 });
  assert.deepEqual([miss.found, miss.scanned_bytes], [false, 0]);

  assert.deepEqual(await ok('kill_sandbox', { sandbox_id: sandboxId }), { id: sandboxId, killed: true });
  const gone = await call('exec_command', { sandbox_id: sandboxId, cmd: 'true' });
  assert.equal(gone.isError, true);
  assert.match(gone.text, /^FORKD_E_SANDBOX_NOT_FOUND: /);
  sandboxId = undefined;
});

test('branch, fork, snapshot info and tree, delete with dependents and in use', async (t) => {
  const run = `mcpb-${Date.now().toString(36)}`;
  const ids: string[] = [];
  t.after(async () => {
    // Directly through the REST API: whatever the tools under test left behind.
    const c = new Controller({ socketPath: d.socketPath });
    for (const id of ids) await c.killSandbox(id).catch(() => undefined);
    const ours = (s: { tag: string; branched_from: string | null }) => s.tag.startsWith(run) || ids.some((id) => s.branched_from === `sandbox:${id}`);
    for (const s of (await c.listSnapshots()).filter(ours)) await c.deleteSnapshot(s.tag, { cascade: true, force: true }).catch(() => undefined);
    assert.deepEqual((await c.listSnapshots()).filter(ours).map((s) => s.tag), [], 'no layer left behind');
  });
  const py = async (id: string, code: string) => {
    const r = await ok('eval_code', { sandbox_id: id, code });
    assert.equal(r.error, null, r.traceback);
    return r.result as string | null;
  };
  const [src] = await ok('spawn_sandboxes', { snapshot_tag: d.tag });
  ids.push(src.id);
  await py(src.id, 'mcp_b = 5');

  const b1 = await ok('branch_sandbox', { sandbox_id: src.id, tag: `${run}-b1` });
  assert.deepEqual([b1.tag, b1.parent_tag, b1.branched_from, b1.status], [`${run}-b1`, d.tag, `sandbox:${src.id}`, 'ready']);
  assert.equal(typeof b1.pause_ms, 'number');
  await py(src.id, 'mcp_b = 6');
  const [k] = await ok('spawn_sandboxes', { snapshot_tag: b1.tag });
  ids.push(k.id);
  assert.equal(await py(k.id, 'mcp_b'), '5', 'the branch holds the state at the capture');

  const f = await ok('fork_sandbox', { sandbox_id: src.id, count: 2 });
  ids.push(...f.sandboxes.map((s: { id: string }) => s.id));
  assert.equal(f.sandboxes.length, 2);
  assert.equal(typeof f.pause_ms, 'number');
  for (const s of f.sandboxes) {
    assert.equal(s.snapshot_tag, f.snapshot_tag);
    assert.ok(s.expires_at_unix_ms > Date.now(), 'fork children get the MCP default timeout');
    assert.equal(await py(s.id, 'mcp_b'), '6');
  }
  assert.equal((await ok('get_sandbox', { sandbox_id: src.id })).status, 'running', 'the source runs on');

  // A layer on the layer: b2 from the child of b1.
  const pending = await ok('branch_sandbox', { sandbox_id: k.id, tag: `${run}-b2`, wait: false });
  assert.equal(pending.status, 'writing');
  const job = await ok('get_job', { job_id: pending.job_id });
  assert.equal(job.kind, 'snapshot.branch');
  let done = job;
  for (let i = 0; i < 600 && done.status !== 'succeeded' && done.status !== 'failed'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    done = await ok('get_job', { job_id: job.id });
  }
  assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
  assert.equal(done.result.parent_tag, b1.tag);

  const info = await ok('snapshot_info', { tag: `${run}-b2` });
  assert.deepEqual([info.chain_depth, info.ancestors, info.dependents], [2, [d.tag, b1.tag], []]);
  assert.deepEqual((await ok('snapshot_info', { tag: b1.tag })).dependents, [`${run}-b2`]);
  const tree = await ok('snapshot_tree', {});
  const root = tree.roots.find((r: { tag: string }) => r.tag === d.tag);
  const n1 = root.children.find((c: { tag: string }) => c.tag === b1.tag);
  assert.deepEqual([n1.kind, n1.sandboxes, n1.children.map((c: { tag: string }) => c.tag)], ['branch', [k.id], [`${run}-b2`]]);
  assert.match((await call('snapshot_info', { tag: 'no-such-snapshot-xyz' })).text, /^FORKD_E_SNAPSHOT_NOT_FOUND: /);

  const inUse = await call('delete_snapshot', { tag: f.snapshot_tag });
  assert.equal(inUse.isError, true);
  assert.match(inUse.text, /^FORKD_E_IN_USE: /);
  assert.deepEqual(await ok('delete_snapshot', { tag: f.snapshot_tag, force: true }), { tag: f.snapshot_tag, deleted: true });
  assert.equal(await py(f.sandboxes[0].id, 'mcp_b + 1'), '7', 'force: the children keep running');

  await ok('kill_sandbox', { sandbox_id: k.id });
  const deps = await call('delete_snapshot', { tag: b1.tag });
  assert.equal(deps.isError, true);
  assert.match(deps.text, /^FORKD_E_HAS_DEPENDENTS: /);
  assert.ok(deps.text.includes(`${run}-b2`), `names the dependent: ${deps.text}`);
  await ok('delete_snapshot', { tag: b1.tag, cascade: true });
  assert.match((await call('snapshot_info', { tag: `${run}-b2` })).text, /^FORKD_E_SNAPSHOT_NOT_FOUND: /, 'cascade took the layer on it');

  const gone = await call('fork_sandbox', { sandbox_id: k.id, count: 1 });
  assert.match(gone.text, /^FORKD_E_SANDBOX_NOT_FOUND: /);
});

test('workspaces: create from a running sandbox, suspend, resume with the same id and state, delete', async (t) => {
  const name = `mcpw-${Date.now().toString(36)}`;
  t.after(async () => {
    await new Controller({ socketPath: d.socketPath }).deleteWorkspace(name).catch(() => undefined);
  });
  const [sb] = await ok('spawn_sandboxes', { snapshot_tag: d.tag });
  const w = await ok('create_workspace', { name, sandbox_id: sb.id, metadata: { via: 'mcp-ws' } });
  assert.deepEqual([w.name, w.status, w.sandbox_id, w.state_tag], [name, 'running', sb.id, null]);
  assert.equal((await ok('get_sandbox', { sandbox_id: sb.id })).expires_at_unix_ms, null, 'a workspace has no timeout');
  await ok('eval_code', { sandbox_id: sb.id, code: "ws_v = 'kept'" });
  await ok('write_file', { sandbox_id: sb.id, path: '/root/ws.txt', content: 'on disk' });

  const s = await ok('suspend_workspace', { name });
  assert.equal(s.status, 'suspended');
  assert.match(s.state_tag, new RegExp(`^ws-${name}-s\\d{6}$`));
  assert.match((await call('get_sandbox', { sandbox_id: sb.id })).text, /^FORKD_E_SANDBOX_NOT_FOUND: /, 'the VM is stopped');
  assert.match((await call('suspend_workspace', { name })).text, /^FORKD_E_CONFLICT: /);
  assert.ok((await ok('list_workspaces', {})).some((x: { name: string; status: string }) => x.name === name && x.status === 'suspended'));

  const r = await ok('resume_workspace', { name });
  assert.deepEqual([r.status, r.sandbox_id], ['running', sb.id]);
  assert.equal((await ok('eval_code', { sandbox_id: sb.id, code: 'ws_v' })).result, "'kept'");
  assert.equal((await ok('read_file', { sandbox_id: sb.id, path: '/root/ws.txt' })).content, 'on disk');
  assert.deepEqual((await ok('get_sandbox', { sandbox_id: sb.id })).metadata, { via: 'mcp-ws' });

  assert.deepEqual(await ok('delete_workspace', { name }), { name, deleted: true });
  assert.match((await call('get_sandbox', { sandbox_id: sb.id })).text, /^FORKD_E_SANDBOX_NOT_FOUND: /);
  assert.match((await call('resume_workspace', { name })).text, /^FORKD_E_WORKSPACE_NOT_FOUND: /);
  assert.deepEqual((await ok('list_snapshots', {})).filter((x: { tag: string }) => x.tag.startsWith(`ws-${name}-`)), [], 'its state layers went with it');
  assert.match((await call('create_workspace', { name, snapshot_tag: 'no-such-snapshot-xyz' })).text, /^FORKD_E_SNAPSHOT_NOT_FOUND: /);
});

test('errors are tool errors starting with the FORKD_E code', async () => {
  const r = await call('get_sandbox', { sandbox_id: 'sb-0000000000000000' });
  assert.equal(r.isError, true);
  assert.match(r.text, /^FORKD_E_SANDBOX_NOT_FOUND: /);
  assert.match((await call('get_job', { job_id: 'job-0000000000000000' })).text, /^FORKD_E_JOB_NOT_FOUND: /);
  assert.match((await call('spawn_sandboxes', { snapshot_tag: 'no-such-snapshot-xyz' })).text, /^FORKD_E_SNAPSHOT_NOT_FOUND: /);
  assert.match((await call('read_file', { sandbox_id: 'sb-0000000000000000', path: 'rel' })).text, /^FORKD_E_INVALID_ARGUMENT: /);
});

test('forkd mcp: stdout carries only JSON-RPC, and the server exits when stdin closes', async () => {
  const p = spawn(process.execPath, CLI_ARGS, { cwd: ROOT, env: { ...process.env, ...d.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  p.stderr.resume();
  const send = (m: object) => p.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...m })}\n`);
  send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } });
  send({ method: 'notifications/initialized' });
  send({ id: 2, method: 'tools/list' });
  send({ id: 3, method: 'tools/call', params: { name: 'list_snapshots', arguments: {} } });
  send({ id: 4, method: 'tools/call', params: { name: 'get_sandbox', arguments: { sandbox_id: 'sb-0000000000000000' } } });
  // stdin closes at once, as in `printf ... | forkd mcp`: the calls already made are still answered.
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  p.stdin.end();
  assert.equal(await exited, 0, 'clean exit on stdin EOF');
  const lines = out.split('\n').filter((l) => l.length > 0);
  const msgs = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id?: number; result?: { isError?: boolean } });
  for (const m of msgs) assert.equal(m.jsonrpc, '2.0');
  // Calls run concurrently: answers come in any order.
  const byId = new Map(msgs.map((m) => [m.id, m]));
  assert.deepEqual([...byId.keys()].sort(), [1, 2, 3, 4]);
  assert.equal(msgs.length, 4);
  assert.equal(byId.get(3)!.result?.isError, undefined);
  assert.equal(byId.get(4)!.result?.isError, true);
});

/** Pids of processes whose command line mentions `needle` (a unique temp path of this test). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const cmd = await fs.readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle) && Number(e) !== process.pid) out.push(Number(e));
  }
  return out;
}

test('without FORKD_URL the server starts the local daemon (the embedded default)', async () => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'fmcp-home-'));
  const env = { ...process.env, FORKD_HOME: home } as Record<string, string>;
  delete env.FORKD_URL;
  delete env.FORKD_TOKEN;
  const transport = new StdioClientTransport({ command: process.execPath, args: NODE_ARGS, cwd: ROOT, env, stderr: 'pipe' });
  let err = '';
  transport.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const c = new Client({ name: 'embedded', version: '0' });
  await c.connect(transport);
  try {
    const r = await c.callTool({ name: 'list_snapshots', arguments: {} });
    assert.equal(r.isError, undefined, (r.content as Content)[0]!.text);
    assert.deepEqual(JSON.parse((r.content as Content)[0]!.text), [], 'a fresh home has no snapshots');
    assert.match(err, /started a local forkd daemon on .*forkd\.sock/);
    await fs.access(path.join(home, 'forkd.sock'));
  } finally {
    await c.close();
    // The started daemon is detached (it would exit after 15 idle minutes): stop it now, by pid.
    for (const pid of await pidsMentioning(home)) process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while ((await pidsMentioning(home)).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await pidsMentioning(home), [], 'the daemon it started is gone');
    await fs.rm(home, { recursive: true, force: true });
  }
});

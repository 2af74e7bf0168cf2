/** The MCP server without a daemon: tool list and schemas, argument validation, pure helpers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { errorFor } from '@forkd/sdk';
import { DeleteSnapshotQuery } from '@forkd/api';
import { createServer } from './server.js';
import { schemas } from './schemas.js';
import { tools } from './tools.js';
import { bytesCopied, scan } from './wait-for-text.js';
import { errorResult } from './result.js';

async function connected() {
  let controllerAsked = 0;
  const server = createServer(async () => {
    controllerAsked++;
    throw errorFor('FORKD_E_UNAVAILABLE', 'no daemon in this test');
  });
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 't', version: '0' });
  await Promise.all([server.connect(a), client.connect(b)]);
  return { client, asked: () => controllerAsked };
}

test('every schema has a tool and every tool is listed with an object JSON schema', async () => {
  assert.deepEqual(tools.map((t) => t.name).sort(), Object.keys(schemas).sort());
  const { client } = await connected();
  const listed = (await client.listTools()).tools;
  assert.equal(listed.length, 30);
  for (const t of listed) assert.equal(t.inputSchema.type, 'object', t.name);
  const exec = listed.find((t) => t.name === 'exec_command')!;
  assert.deepEqual(Object.keys(exec.inputSchema.properties ?? {}).sort(), ['args', 'cmd', 'cwd', 'envs', 'sandbox_id', 'stdin', 'timeout_secs']);
  assert.deepEqual(exec.inputSchema.required, ['sandbox_id'], 'defaults (timeout_secs) are optional for the caller');
  const spawn = listed.find((t) => t.name === 'spawn_sandboxes')!;
  assert.match(JSON.stringify(spawn.inputSchema), /"maximum":1000/, 'n keeps the API limit');
  const del = listed.find((t) => t.name === 'delete_snapshot')!;
  assert.deepEqual(Object.keys(del.inputSchema.properties ?? {}).sort(), ['tag', ...Object.keys(DeleteSnapshotQuery.shape)].sort(), 'the API delete flags, as booleans');
  assert.equal(del.annotations?.destructiveHint, true);
  const fork = listed.find((t) => t.name === 'fork_sandbox')!;
  assert.match(JSON.stringify(fork.inputSchema), /"maximum":100\b/, 'count keeps the API limit');
  // Registry passwords would sit in the agent's transcript: push and pull take none.
  for (const name of ['push_snapshot', 'pull_snapshot']) {
    const t = listed.find((x) => x.name === name)!;
    const props = Object.keys(t.inputSchema.properties ?? {});
    assert.ok(props.includes('ref') && !props.includes('password') && !props.includes('username'), `${name}: ${props.join(',')}`);
  }
});

test('invalid arguments are tool errors starting with FORKD_E_INVALID_ARGUMENT, before any daemon call', async () => {
  const { client, asked } = await connected();
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['exec_command', { sandbox_id: 'sb-0123456789abcdef' }, /exactly one of args or cmd/],
    ['exec_command', { sandbox_id: 'nope', cmd: 'true' }, /sandbox_id: invalid sandbox id/],
    ['read_file', { sandbox_id: 'sb-0123456789abcdef', path: 'relative' }, /path: path must be absolute/],
    ['spawn_sandboxes', { snapshot_tag: 'x', n: 5000 }, /^FORKD_E_INVALID_ARGUMENT: .*n:/],
    ['kill_sandbox', { sandbox_id: 'sb-0123456789abcdef', extra: 1 }, /extra/],
    ['delete_snapshot', { tag: 'x', cascade: 'true' }, /cascade:/],
    ['delete_snapshot', { tag: '../etc' }, /tag: invalid tag/],
    ['create_workspace', { name: 'w', snapshot_tag: 'x', sandbox_id: 'sb-0123456789abcdef' }, /exactly one of snapshot_tag or sandbox_id/],
    ['create_workspace', { name: 'w' }, /exactly one of snapshot_tag or sandbox_id/],
    ['suspend_workspace', { name: '../w' }, /name: invalid workspace name/],
    ['fork_sandbox', { sandbox_id: 'sb-0123456789abcdef', count: 101 }, /count:/],
  ];
  for (const [name, args, re] of cases) {
    const r = await client.callTool({ name, arguments: args });
    assert.equal(r.isError, true, name);
    const text = (r.content as Array<{ text: string }>)[0]!.text;
    assert.match(text, /^FORKD_E_INVALID_ARGUMENT: /, text);
    assert.match(text, re, text);
  }
  assert.equal(asked(), 0);
  const r = await client.callTool({ name: 'list_snapshots', arguments: {} });
  assert.equal(r.isError, true);
  assert.match((r.content as Array<{ text: string }>)[0]!.text, /^FORKD_E_UNAVAILABLE: no daemon/);
  await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), /unknown tool/);
});

test('errorResult: code first, then message and details', () => {
  const r = errorResult(errorFor('FORKD_E_SANDBOX_NOT_FOUND', 'no sandbox sb-1', { id: 'sb-1' }));
  assert.equal(r.isError, true);
  assert.equal((r.content[0] as { text: string }).text, 'FORKD_E_SANDBOX_NOT_FOUND: no sandbox sb-1\n{"id":"sb-1"}');
  assert.match((errorResult(new Error('plain')).content[0] as { text: string }).text, /^FORKD_E_INTERNAL: plain/);
});

test('wait_for_text helpers: dd byte count, marker split across reads', () => {
  assert.equal(bytesCopied('1+0 records in\n1+0 records out\n524288 bytes (524 kB, 512 KiB) copied, 0.01 s, 50 MB/s\n'), 524288);
  assert.equal(bytesCopied('0+0 records in\n0+0 records out\n0 bytes copied, 0.0001 s, 0.0 kB/s\n'), 0);
  assert.equal(bytesCopied('dd: failed to open'), null);
  const first = scan('', 'hello RE', 'READY');
  assert.equal(first.excerpt, null);
  assert.equal(first.carry, 'o RE', 'marker length - 1 characters are carried');
  const second = scan(first.carry, 'ADY now', 'READY');
  assert.equal(second.excerpt, 'o READY now');
  assert.equal(scan('', 'abc', 'x').carry, '', 'one-character markers need no carry');
});

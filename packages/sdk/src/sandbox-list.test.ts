import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxPaginator, matchesMetadata, toDetails, type SandboxDetails } from './sandbox-list.js';
import { InvalidArgumentError } from './errors.js';
import { Sandbox } from './sandbox.js';

const item = (id: string) => ({ sandboxId: id }) as SandboxDetails;

test('paginator: one fetch, pages of limit, hasNext/nextToken, then an error', async () => {
  let fetches = 0;
  const p = new SandboxPaginator(async () => { fetches++; return ['a', 'b', 'c'].map(item); }, 2);
  assert.equal(p.hasNext, true);
  assert.deepEqual((await p.nextItems()).map((s) => s.sandboxId), ['a', 'b']);
  assert.equal(p.nextToken, '2');
  assert.deepEqual((await p.nextItems()).map((s) => s.sandboxId), ['c']);
  assert.equal(p.hasNext, false);
  assert.equal(p.nextToken, undefined);
  await assert.rejects(p.nextItems(), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && e.code === 'FORKD_E_OUT_OF_RANGE');
  assert.equal(fetches, 1);
});

test('paginator: toArray and async iteration give everything; empty list ends at once', async () => {
  assert.deepEqual((await new SandboxPaginator(async () => ['a', 'b', 'c'].map(item), 2).toArray()).map((s) => s.sandboxId), ['a', 'b', 'c']);
  const seen: string[] = [];
  for await (const s of new SandboxPaginator(async () => ['x', 'y'].map(item))) seen.push(s.sandboxId);
  assert.deepEqual(seen, ['x', 'y']);
  const empty = new SandboxPaginator(async () => []);
  assert.deepEqual(await empty.nextItems(), []);
  assert.equal(empty.hasNext, false);
  assert.throws(() => new SandboxPaginator(async () => [], 0), InvalidArgumentError);
});

test('toDetails maps the wire names to E2B names', () => {
  const d = toDetails({ id: 'sb-0123456789abcdef', snapshot_tag: 'py', status: 'running', pid: 1, created_at_unix: 1000, expires_at_unix_ms: 2_000_000, metadata: { a: 'b' }, ready: { spawn_to_running_ms: 1, spawn_to_ready_ms: 2, clock_skew_ms: 0 }, language: 'python', network: false, netns: null, guest_addr: null, memory_limit_mib: 512, limits: { cpu_weight: null, cpu_quota: 0.5, pids_max: null, disk_limit_mib: null, io_read_bps: null, io_write_bps: null }, end_reason: 'oom', egress: null, has_branched: false, branch_count: 0, workspace: null, owner: 'alice', guest_fork: null, variant: null, idle: null });
  assert.deepEqual(d, { sandboxId: 'sb-0123456789abcdef', templateId: 'py', metadata: { a: 'b' }, startedAt: new Date(1_000_000), endAt: new Date(2_000_000), state: 'running', language: 'python', endReason: 'oom', memoryLimitMib: 512, owner: 'alice' });
});

test('matchesMetadata needs every pair', () => {
  assert.equal(matchesMetadata({ a: '1', b: '2' }, { a: '1', b: '2' }), true);
  assert.equal(matchesMetadata({ a: '1' }, { a: '1', b: '2' }), false);
  assert.equal(matchesMetadata({ a: '1' }, undefined), true);
});

test('a malformed daemon url is an InvalidArgumentError, not a bare TypeError', async () => {
  const bad = (e: unknown) => e instanceof InvalidArgumentError && e.code === 'FORKD_E_INVALID_ARGUMENT';
  assert.throws(() => Sandbox.list({ url: 'http://[oops' }), bad);
  await assert.rejects(Sandbox.connect('sb-0123456789abcdef', { url: 'not a url' }), bad);
  await assert.rejects(Sandbox.create('t', { url: 'ftp://host' }), bad);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CommandExitError, PID_WRAPPER, PidLineParser, settle, timeoutSecs } from './command-result.js';
import { InvalidArgumentError, TimeoutError, ForkdSdkError } from './errors.js';

const base = { exit_code: 0, error: null, timed_out: false, stdout: 'out', stderr: 'err' };

test('settle: exit 0 is a result', () => {
  assert.deepEqual(settle(base), { exitCode: 0, stdout: 'out', stderr: 'err' });
});

test('settle: non-zero exit throws CommandExitError with the same fields and a code', () => {
  const e = (() => { try { settle({ ...base, exit_code: 3 }); } catch (x) { return x; } })() as CommandExitError;
  assert.ok(e instanceof CommandExitError && e instanceof ForkdSdkError);
  assert.equal(e.code, 'FORKD_E_COMMAND_FAILED');
  assert.deepEqual([e.exitCode, e.stdout, e.stderr, e.error], [3, 'out', 'err', undefined]);
  assert.match(e.message, /code 3: err/);
});

test('settle: a signal (exit_code null) is exit -1 with a reason; a spawn error keeps its message', () => {
  assert.throws(() => settle({ ...base, exit_code: null }), (e: CommandExitError) => e.exitCode === -1 && e.error === 'killed by a signal');
  assert.throws(() => settle({ ...base, exit_code: null, error: 'spawn nope ENOENT' }), (e: CommandExitError) => e.error === 'spawn nope ENOENT');
});

test('settle: timed_out throws TimeoutError FORKD_E_TIMEOUT', () => {
  assert.throws(() => settle({ ...base, exit_code: null, timed_out: true }, 2), (e: TimeoutError) => e instanceof TimeoutError && e.code === 'FORKD_E_TIMEOUT' && /2000 ms/.test(e.message));
});

test('timeoutSecs: default, 0 = the API cap, bad values rejected', () => {
  assert.equal(timeoutSecs(undefined), 60);
  assert.equal(timeoutSecs(1500), 1.5);
  assert.equal(timeoutSecs(0), 3600);
  assert.equal(timeoutSecs(undefined, 5000), 5);
  assert.throws(() => timeoutSecs(-1), InvalidArgumentError);
  assert.throws(() => timeoutSecs(Number.NaN), InvalidArgumentError);
});

test('PidLineParser: strips the marker line, even split across chunks, and keeps the rest', () => {
  const p = new PidLineParser();
  assert.equal(p.push('\u001efork'), '');
  assert.equal(p.push('d-pid:12'), '');
  assert.equal(p.pid, null);
  assert.equal(p.push('34\nfirst err'), 'first err');
  assert.equal(p.pid, 1234);
  assert.equal(p.push('\u001eforkd-pid:9\n'), '\u001eforkd-pid:9\n', 'only the first line is the marker');
});

test('PidLineParser: a stream without the marker passes through untouched', () => {
  const p = new PidLineParser();
  assert.equal(p.push('bash: oops\n'), 'bash: oops\n');
  assert.equal(p.pid, null);
  const q = new PidLineParser();
  assert.equal(q.push('\u001eforkd-pid:x\nrest'), '\u001eforkd-pid:x\nrest');
});

test('PID_WRAPPER (host bash): reports the pid the command runs as, then runs the command', () => {
  const r = spawnSync('/bin/bash', ['-c', PID_WRAPPER, 'forkd', 'echo "$$" ; echo e >&2; exit 7'], { encoding: 'utf8' });
  const p = new PidLineParser();
  const rest = p.push(r.stderr);
  assert.equal(rest, 'e\n');
  assert.equal(r.status, 7);
  assert.equal(String(p.pid), r.stdout.trim(), 'exec keeps the pid');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliver, evalLanguage, fromRunCode, splitLines, toExecution, type OutputMessage } from './code.js';
import { InvalidArgumentError } from './errors.js';

const wire = { result: null, result_json: null, error: null, error_type: null, traceback: null, exit_code: 0, stdout: '', stderr: '', duration_ms: 1 };

test('toExecution: a value gives one main result with text and json', () => {
  const e = toExecution({ ...wire, result: '[1, 2]', result_json: [1, 2], stdout: 'a\nb\n' });
  assert.equal(e.text, '[1, 2]');
  assert.equal(e.results.length, 1);
  assert.deepEqual(e.results[0]!.json, [1, 2]);
  assert.equal(e.results[0]!.isMainResult, true);
  assert.deepEqual(e.results[0]!.formats(), ['text', 'json']);
  assert.deepEqual(e.logs, { stdout: ['a\n', 'b\n'], stderr: [] });
  assert.equal(e.error, undefined);
  assert.deepEqual(JSON.parse(JSON.stringify(e)), { results: [{ text: '[1, 2]', json: [1, 2], isMainResult: true }], logs: { stdout: ['a\n', 'b\n'], stderr: [] } });
});

test('toExecution: no value (None / statements) gives no results; an error maps to name/value/traceback', () => {
  const e = toExecution({ ...wire, error: "name 'x' is not defined", error_type: 'NameError', traceback: 'Traceback...', exit_code: 1 });
  assert.deepEqual(e.results, []);
  assert.equal(e.text, undefined);
  assert.deepEqual(e.error, { name: 'NameError', value: "name 'x' is not defined", traceback: 'Traceback...' });
});

test('splitLines keeps newlines and a trailing partial line', () => {
  assert.deepEqual(splitLines(''), []);
  assert.deepEqual(splitLines('a'), ['a']);
  assert.deepEqual(splitLines('a\n\nb'), ['a\n', '\n', 'b']);
});

test('evalLanguage maps E2B names and rejects others with a code', () => {
  assert.equal(evalLanguage(undefined), undefined);
  assert.equal(evalLanguage('python'), 'python');
  assert.equal(evalLanguage('javascript'), 'js');
  assert.throws(() => evalLanguage('r' as never), (e: InvalidArgumentError) => e instanceof InvalidArgumentError && e.code === 'FORKD_E_INVALID_ARGUMENT');
});

test('deliver replays output lines, results and the error through the callbacks', () => {
  const got: string[] = [];
  const e = toExecution({ ...wire, result: '3', stdout: 'x\n', stderr: 'w\n', error: 'boom', error_type: 'E' });
  deliver(e, {
    onStdout: (m: OutputMessage) => got.push(`out:${m.line}:${m.error}:${m.timestamp}`),
    onStderr: (m: OutputMessage) => got.push(`err:${m.line}:${m.error}`),
    onResult: (r) => got.push(`res:${r.text}`),
    onError: (x) => got.push(`error:${x.name}`),
  }, 42);
  assert.deepEqual(got, ['out:x\n:false:42', 'err:w\n:true', 'res:3', 'error:E']);
});

test('run_code answers become E2B Executions: every format kept, main result, logs, error, execution count', () => {
  const e = fromRunCode({
    results: [
      { text: '   a\n0  1', html: '<table></table>', is_main_result: false },
      { text: '<Figure size 640x480 with 1 Axes>', png: 'iVBORw0KGgo=', is_main_result: false },
      { text: '42', json: 42, is_main_result: true },
    ],
    logs: { stdout: ['hi\n'], stderr: ['warn\n'] },
    error: null, execution_count: 7, interpreter: 'ipython', dropped: ['result 3: image/png of 9 bytes exceeds the cap of 1'], duration_ms: 3,
  });
  assert.deepEqual(e.results.map((r) => r.formats()), [['text', 'html'], ['text', 'png'], ['text', 'json']]);
  assert.equal(e.results[1]!.png, 'iVBORw0KGgo=');
  assert.equal(e.text, '42');
  assert.equal(e.executionCount, 7);
  assert.deepEqual(e.logs, { stdout: ['hi\n'], stderr: ['warn\n'] });
  assert.equal(e.dropped.length, 1);
  assert.deepEqual(JSON.parse(JSON.stringify(e)).results[0], { text: '   a\n0  1', html: '<table></table>', isMainResult: false });
  const failed = fromRunCode({ results: [], logs: { stdout: [], stderr: [] }, error: { name: 'ZeroDivisionError', value: 'division by zero', traceback: 'tb' }, execution_count: 8, interpreter: 'ipython', dropped: [], duration_ms: 1 });
  assert.deepEqual(failed.error, { name: 'ZeroDivisionError', value: 'division by zero', traceback: 'tb' });
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSeeds, parseVaryFlags } from './vary-flags.js';

test('--vary NAME=V1,V2: numbers and booleans as JSON, the rest as strings; bad forms are refused', () => {
  assert.deepEqual(parseVaryFlags(['temperature=0.1,0.5,0.9', 'model=a,b,c', 'greedy=true,false,true']), { temperature: [0.1, 0.5, 0.9], model: ['a', 'b', 'c'], greedy: [true, false, true] });
  assert.deepEqual(parseVaryFlags(['v=1e3,-2,x1']), { v: [1000, -2, 'x1'] });
  assert.equal(parseVaryFlags([]), undefined);
  assert.throws(() => parseVaryFlags(['novalue']), (e) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
  assert.throws(() => parseVaryFlags(['a=1', 'a=2']), (e) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
  assert.deepEqual(parseSeeds('1,2,3'), [1, 2, 3]);
  assert.throws(() => parseSeeds('1,x'), (e) => (e as { code?: string }).code === 'FORKD_E_INVALID_ARGUMENT');
});

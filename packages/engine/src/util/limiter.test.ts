import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Limiter } from './limiter.js';

test('never more than its slots at once, every function runs, in order, failures included', async () => {
  const l = new Limiter(3);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => l.run(async () => {
    active++;
    peak = Math.max(peak, active);
    order.push(i);
    await new Promise((r) => setTimeout(r, 5 + (i % 4)));
    active--;
    if (i % 7 === 0) throw new Error(`fail ${i}`);
    return i;
  })));
  assert.equal(peak, 3);
  assert.deepEqual(order, Array.from({ length: 20 }, (_, i) => i));
  assert.equal(results.filter((r) => r.status === 'rejected').length, 3);
  assert.equal(await l.run(async () => 'after'), 'after', 'slots were all given back');
});

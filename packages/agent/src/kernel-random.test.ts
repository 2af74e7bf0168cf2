import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { routeCryptoRandomToKernel } from './kernel-random.js';

test('crypto randomness is routed to the kernel and keeps Node semantics', async () => {
  routeCryptoRandomToKernel();
  assert.equal(crypto.randomBytes(16).length, 16);
  assert.notEqual(crypto.randomBytes(16).toString('hex'), crypto.randomBytes(16).toString('hex'));
  assert.match(crypto.randomUUID(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const buf = Buffer.alloc(8);
  crypto.randomFillSync(buf, 2, 4);
  assert.equal(buf.readUInt16BE(0), 0);
  assert.equal(buf.readUInt16BE(6), 0);
  for (let i = 0; i < 200; i++) {
    const n = crypto.randomInt(3, 7);
    assert.ok(n >= 3 && n < 7);
  }
  const cbBuf = await new Promise<Buffer>((resolve, reject) => crypto.randomBytes(4, (e, b) => (e ? reject(e) : resolve(b))));
  assert.equal(cbBuf.length, 4);
  const arr = crypto.webcrypto.getRandomValues(new Uint32Array(4));
  assert.equal(arr.length, 4);
  assert.throws(() => crypto.randomBytes(-1), RangeError);
});

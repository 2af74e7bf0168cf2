import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { AddressPool } from './pool.js';

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;

test('a /16 holds 32768 /31 pairs, each a unique child address next to its uplink address', () => {
  const p = new AddressPool('10.200.0.0/16');
  assert.equal(p.size, 32768);
  const a = p.allocate();
  const b = p.allocate();
  assert.deepEqual(a, { index: 0, uplinkAddr: '10.200.0.0', hostAddr: '10.200.0.1' });
  assert.deepEqual(b, { index: 1, uplinkAddr: '10.200.0.2', hostAddr: '10.200.0.3' });
  assert.equal(p.slot(32767).hostAddr, '10.200.255.255');
});

test('released pairs are reused only after the others (round robin), and exhaustion is a capacity error', () => {
  const p = new AddressPool('10.9.0.0/24');
  assert.equal(p.size, 128);
  const all = Array.from({ length: 128 }, () => p.allocate());
  assert.equal(new Set(all.map((s) => s.hostAddr)).size, 128);
  assert.throws(() => p.allocate(), code('FORKD_E_CAPACITY'));
  p.release(5);
  assert.equal(p.allocate().index, 5);
});

test('reserve takes the pair of an adopted child and refuses addresses outside the pool', () => {
  const p = new AddressPool('10.200.0.0/16');
  assert.equal(p.reserve('10.200.0.7')?.index, 3);
  assert.equal(p.reserve('10.200.0.6'), null); // an uplink address, not a child's
  assert.equal(p.reserve('10.201.0.1'), null);
  for (let i = 0; i < 3; i++) p.allocate();
  assert.equal(p.allocate().index, 4);
});

test('bad pools are refused with clear codes', () => {
  assert.throws(() => new AddressPool('10.200.0.0'), code('FORKD_E_INVALID_ARGUMENT'));
  assert.throws(() => new AddressPool('10.200.0.1/16'), code('FORKD_E_INVALID_ARGUMENT'));
  assert.throws(() => new AddressPool('10.300.0.0/16'), code('FORKD_E_INVALID_ARGUMENT'));
  assert.throws(() => new AddressPool('10.0.0.0/4'), code('FORKD_E_OUT_OF_RANGE'));
  assert.throws(() => new AddressPool('10.0.0.0/30'), code('FORKD_E_OUT_OF_RANGE'));
});

/**
 * Children of one snapshot share the parent's memory, generator states included: every generator
 * a child's long-lived processes use must be distinct per child after restore. Keys and random
 * values from 8 children of the fixture snapshot, and from 8 children of one fresh branch of a
 * sandbox that had used OpenSSL and libc in both interpreters, are all different.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller, Sandbox } from './index.js';

const CHILDREN = 8;
let d: TestDaemon;
let ctl: Controller;
const suite = `entropy-${crypto.randomBytes(3).toString('hex')}`;
const made = new Set<string>();
const conn = () => ({ socketPath: d.socketPath });

/** One value per generator, from the agent's JS context (the process that holds the cloned OpenSSL). */
const JS_PROBE = `(() => {
  const c = require('crypto');
  return {
    ed25519: c.generateKeyPairSync('ed25519').publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    ecdh: c.createECDH('prime256v1').generateKeys('hex'),
    webcryptoUuid: c.randomUUID(),
    randomBytes: c.randomBytes(16).toString('hex'),
    mathRandom: String(Math.random()),
  };
})()`;

/** One value per generator in the persistent Python interpreter. */
const PY_PROBE = `import random, os, numpy
{"random": repr(random.random()), "numpy": repr(numpy.random.rand()), "urandom": os.urandom(16).hex()}`;

/** Used in the branch source before the capture, so OpenSSL and libc state exist in the interpreter. */
const PY_NATIVE_SETUP = `import ssl, ctypes
entropy_libc = ctypes.CDLL(None)
entropy_libc.srandom(7)
(ssl.RAND_bytes(16).hex(), entropy_libc.random())`;
const PY_NATIVE_PROBE = `{"openssl": ssl.RAND_bytes(16).hex(), "libc": str(entropy_libc.random())}`;

async function value(sb: Sandbox, code: string, language?: 'javascript'): Promise<Record<string, string>> {
  const ex = await sb.runCode(code, language ? { language } : {});
  assert.equal(ex.error, undefined, ex.error?.traceback);
  const json = ex.results.find((r) => r.isMainResult)?.json;
  assert.equal(typeof json, 'object', `not an object: ${ex.text}`);
  return json as Record<string, string>;
}

async function probe(sb: Sandbox, native: boolean): Promise<Record<string, string>> {
  return {
    ...(await value(sb, JS_PROBE, 'javascript')),
    ...(await value(sb, PY_PROBE)),
    ...(native ? await value(sb, PY_NATIVE_PROBE) : {}),
  };
}

/** Every generator gave a different value in every sandbox. */
function assertAllDistinct(values: Array<Record<string, string>>, where: string): void {
  for (const key of Object.keys(values[0]!)) {
    const seen = values.map((v) => v[key]);
    assert.equal(new Set(seen).size, seen.length, `${where}: ${key} repeats across children: ${seen.join(' ')}`);
  }
}

before(async () => {
  d = await startTestDaemon();
  ctl = new Controller(conn());
});

after(async () => {
  if (!ctl) return;
  for (const id of made) await ctl.killSandbox(id).catch(() => undefined);
  for (const s of (await ctl.listSnapshots()).filter((s) => [...made].some((id) => s.branched_from === `sandbox:${id}`))) {
    await ctl.deleteSnapshot(s.tag, { cascade: true, force: true }).catch(() => undefined);
  }
  await d.stop();
});

describe('per-child randomness after restore', () => {
  test(`${CHILDREN} children of one snapshot: keys and random values all differ`, async () => {
    const kids = await Promise.all(Array.from({ length: CHILDREN }, () => Sandbox.create(d.tag, { ...conn(), metadata: { suite } })));
    kids.forEach((k) => made.add(k.sandboxId));
    const values = [];
    for (const k of kids) values.push(await probe(k, false));
    assertAllDistinct(values, 'children of the snapshot');
    await Promise.all(kids.map((k) => k.kill()));
  });

  test(`${CHILDREN} children of one fresh branch (OpenSSL and libc in use in the source): all differ, and differ from the source`, async () => {
    const src = await Sandbox.create(d.tag, { ...conn(), metadata: { suite } });
    made.add(src.sandboxId);
    const setup = await src.runCode(PY_NATIVE_SETUP);
    assert.equal(setup.error, undefined, setup.error?.traceback);
    await probe(src, true); // the JS context's DRBGs are in use too
    const kids = await src.fork({ count: CHILDREN });
    const children = kids.map((k) => {
      assert.ok(k instanceof Sandbox, String(k));
      made.add(k.sandboxId);
      return k;
    });
    const values = [await probe(src, true)];
    for (const k of children) values.push(await probe(k, true));
    assertAllDistinct(values, 'children of the branch');
  });
});

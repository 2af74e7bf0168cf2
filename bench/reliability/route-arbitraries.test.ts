import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import { routes, type RouteDef } from '@forkd/api';
import { arbitraryOf, requestArbitrary } from './route-arbitraries.js';

const toSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }) as Parameters<typeof arbitraryOf>[0];

test("valid-body arbitraries produce bodies the route's own schema accepts (so the fuzzer reaches the handlers, not only validation)", () => {
  const failing: string[] = [];
  for (const [name, r] of Object.entries(routes) as Array<[string, RouteDef]>) {
    for (const s of [r.body && r.bodyKind !== 'octet' ? r.body : null, r.params ?? null].filter((x): x is z.ZodType => x !== null)) {
      const values = fc.sample(arbitraryOf(toSchema(s)), { numRuns: 40, seed: 7 });
      const bad = values.filter((v) => !s.safeParse(v).success);
      // zod refinements (e.g. "exactly one of") are not in JSON Schema; the fuzzer filters with zod, which needs a fair share (1 in 5) to pass.
      if (bad.length > 32) failing.push(`${name}: ${40 - bad.length}/40 valid; first failure: ${JSON.stringify(s.safeParse(bad[0]).error?.issues[0])}`);
    }
  }
  assert.deepEqual(failing, []);
});

test('requests cover every route, all token kinds, and keep real targets away from costly routes', () => {
  const real = 'sb-0123456789abcdef';
  const reqs = fc.sample(requestArbitrary({ sandboxIds: [real], tags: ['real-tag'], workspaces: ['real-ws'] }), { numRuns: 5000, seed: 3 });
  assert.deepEqual(new Set(reqs.map((r) => r.route)), new Set(Object.keys(routes)));
  assert.deepEqual(new Set(reqs.map((r) => r.token)), new Set(['valid', 'wrong', 'none', 'malformed']));
  for (const r of reqs) {
    if (['killSandbox', 'setTimeout', 'branch', 'fork', 'deleteSnapshot', 'deleteWorkspace', 'suspendWorkspace', 'resumeWorkspace'].includes(r.route)) {
      assert.ok(!r.path.includes(real) && !r.path.includes('/real-tag') && !r.path.includes('/real-ws'), `${r.route} aimed at a real target: ${r.path}`);
    }
  }
  assert.ok(reqs.some((r) => r.route === 'exec' && r.path.includes(real)), 'no exec reached the real sandbox');
});

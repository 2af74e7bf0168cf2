import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { openApiDocument } from './openapi.js';
import { routes } from './routes.js';
import { FORKD_VERSION } from '@forkd/protocol';

const committed = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi.json');

test('the committed openapi.json is what the route table generates (run `npm run openapi` after changing the API)', () => {
  const generated = JSON.stringify(openApiDocument(FORKD_VERSION), null, 2);
  assert.equal(readFileSync(committed, 'utf8').trim(), generated.trim());
});

test('every route appears in the document with its method, and every authenticated route declares bearer auth', () => {
  const doc = openApiDocument(FORKD_VERSION) as { paths: Record<string, Record<string, { security?: unknown; operationId: string }>> };
  for (const [name, r] of Object.entries(routes)) {
    const op = doc.paths[r.path.replace(/:([a-z][a-z0-9_]*)/g, '{$1}')]?.[r.method.toLowerCase()];
    assert.ok(op, `${name} missing`);
    assert.equal(op.operationId, name);
    assert.equal(Boolean(op.security), r.auth, `${name} auth`);
  }
});

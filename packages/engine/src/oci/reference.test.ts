import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForkdError } from '@forkd/protocol';
import { defaultScheme, parseReference } from './reference.js';
import { parseChallenge } from './auth.js';

test('references: host:port, nested repositories, tags, digests, Docker Hub short names', () => {
  assert.deepEqual({ ...parseReference('127.0.0.1:5000/forkd/python:v1'), text: '' }, { registry: '127.0.0.1:5000', repository: 'forkd/python', reference: 'v1', text: '' });
  assert.equal(parseReference('localhost/a/b/c').reference, 'latest');
  const d = `sha256:${'a'.repeat(64)}`;
  assert.equal(parseReference(`ghcr.io/o/r@${d}`).reference, d);
  assert.deepEqual([parseReference('python').registry, parseReference('python').repository], ['registry-1.docker.io', 'library/python']);
  assert.equal(parseReference('docker.io/me/snap:x').registry, 'registry-1.docker.io');
  assert.equal(parseReference('oci://127.0.0.1:5000/x:y').repository, 'x');
});

test('bad references are FORKD_E_INVALID_ARGUMENT, never a URL', () => {
  for (const bad of ['', 'UPPER/case', 'host:5000/../etc', 'h/r:bad tag', `h/r@sha256:${'z'.repeat(64)}`, 'h/r@md5:abc', 'a b/c', 'h/r/', `h/${'a'.repeat(300)}`, 'h:99x/r']) {
    assert.throws(() => parseReference(bad), (e: unknown) => e instanceof ForkdError && e.code === 'FORKD_E_INVALID_ARGUMENT', bad);
  }
});

test('loopback registries default to http, the rest to https', () => {
  assert.equal(defaultScheme('127.0.0.1:5000'), 'http');
  assert.equal(defaultScheme('localhost'), 'http');
  assert.equal(defaultScheme('[::1]:5000'), 'http');
  assert.equal(defaultScheme('ghcr.io'), 'https');
  assert.equal(defaultScheme('127.example.com'), 'https');
});

test('WWW-Authenticate challenges: Bearer with quoted params, Basic, junk', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="x"'), { scheme: 'basic', params: { realm: 'x' } });
  assert.equal(parseChallenge('Negotiate abc'), null);
  assert.equal(parseChallenge(null), null);
});

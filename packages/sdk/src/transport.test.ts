import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveEndpoint } from './transport.js';

const token = 't'.repeat(32);

test('a token is not sent over plain http to a host that is not loopback unless allowed', () => {
  const saved = process.env.FORKD_ALLOW_INSECURE;
  delete process.env.FORKD_ALLOW_INSECURE;
  try {
    assert.throws(() => resolveEndpoint({ url: 'http://10.0.0.5:8889', token }), (e: Error & { code?: string }) => e.code === 'FORKD_E_INVALID_ARGUMENT' && /cleartext/.test(e.message));
    assert.throws(() => resolveEndpoint({ url: 'http://forkd.example.org', token }), /cleartext/);
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token, allowInsecure: true }).token, token);
    process.env.FORKD_ALLOW_INSECURE = '1';
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token }).token, token);
    delete process.env.FORKD_ALLOW_INSECURE;
    for (const url of ['https://10.0.0.5:8889', 'http://127.0.0.1:8889', 'http://localhost:1', 'http://[::1]:1']) {
      assert.equal(resolveEndpoint({ url, token }).token, token, url);
    }
    assert.equal(resolveEndpoint({ url: 'http://10.0.0.5:8889', token: '' }).token, undefined, 'no token: nothing to leak');
  } finally {
    if (saved === undefined) delete process.env.FORKD_ALLOW_INSECURE;
    else process.env.FORKD_ALLOW_INSECURE = saved;
  }
});

test('a request on a kept-alive connection the server already dropped is sent again on a new one (idempotent only)', async () => {
  const { default: http } = await import('node:http');
  const { promises: fs } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { send, readBody } = await import('./transport.js');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-transport-'));
  const socketPath = path.join(dir, 's.sock');
  // Answers the first request on each connection; drops the connection at the second (a keep-alive
  // timeout the client has not seen yet).
  const served = new WeakMap<object, number>();
  let connections = 0;
  const server = http.createServer((req, res) => {
    const n = (served.get(req.socket) ?? 0) + 1;
    served.set(req.socket, n);
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => res.end(JSON.stringify({ method: req.method })));
  });
  server.on('connection', () => { connections++; });
  await new Promise<void>((ok) => server.listen(socketPath, ok));
  const ep = { socketPath, timeoutMs: 5000 };
  try {
    const call = async (method: string) => JSON.parse((await readBody(await send(ep, { method, path: '/x' }))).toString()) as { method: string };
    assert.deepEqual(await call('GET'), { method: 'GET' });
    assert.deepEqual(await call('GET'), { method: 'GET' }, 'the stale socket is retried on a new connection');
    assert.equal(connections, 2);
    // A POST is not replayed: the caller gets the error.
    await assert.rejects(send(ep, { method: 'POST', path: '/x', json: {} }), (e: Error & { code?: string }) => e.code === 'FORKD_E_UNAVAILABLE');
    assert.equal(connections, 2);
  } finally {
    await new Promise((ok) => server.close(ok));
    server.closeAllConnections();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

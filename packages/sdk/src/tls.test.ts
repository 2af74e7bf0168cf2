/** The daemon over https (--tls-cert/--tls-key) with a self-signed certificate, from both SDKs (no VM). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { Controller } from './index.js';

let d: TestDaemon;
let dir: string;
let cert: string;
before(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fdd-tls-'));
  cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-keyout', key, '-out', cert,
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  d = await startTestDaemon({ tcp: true, token: true, fixture: false, extraArgs: ['--tls-cert', cert, '--tls-key', key] });
});
after(async () => {
  await d?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

test('the daemon serves https; the TS SDK trusts it with `ca` and refuses it without', async () => {
  assert.match(d.url!, /^https:\/\/127\.0\.0\.1:\d+$/);
  const port = new URL(d.url!).port;
  for (const url of [d.url!, `https://localhost:${port}`]) {
    const c = new Controller({ url, token: d.token!, ca: await fs.readFile(cert) });
    assert.match(await c.metrics(), /forkd_/, url);
  }
  await assert.rejects(new Controller({ url: d.url!, token: d.token! }).metrics(), /self-signed|certificate/i);
});

test('the Python SDK talks to the https daemon with SSL_CERT_FILE', () => {
  const sdk = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'sdk', 'python');
  const py = 'import forkd, sys; print(forkd.Controller(sys.argv[1], sys.argv[2]).version())';
  const r = spawnSync('python3', ['-c', py, d.url!, d.token!], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: sdk, SSL_CERT_FILE: cert }, timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const untrusted = spawnSync('python3', ['-c', py, d.url!, d.token!], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: sdk, SSL_CERT_FILE: '/nonexistent' }, timeout: 30_000 });
  assert.notEqual(untrusted.status, 0);
  assert.match(untrusted.stderr, /CERTIFICATE_VERIFY_FAILED|certificate/i);
});

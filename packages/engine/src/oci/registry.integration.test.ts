/**
 * The registry client against a real registry (Debian's docker-registry on loopback): uploads
 * monolithic and chunked, HEAD skips, manifests, digests, and Basic auth from flags and from
 * Docker's config.json. No VMs (no lock needed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import http from 'node:http';
import { ForkdError } from '@forkd/protocol';
import { startRegistry, type TestRegistry } from '../testing/registry.js';
import { startTokenServer, type TokenServer } from '../testing/token-server.js';
import { RegistryClient } from './registry.js';
import { dockerConfigCredentials } from './auth.js';
import { sha256Digest } from './digest.js';
import { MEDIA } from './format.js';

let plain: TestRegistry;
let basic: TestRegistry;
let bearer: TestRegistry;
let tokens: TokenServer;
let tmp: string;

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-oci-reg-'));
  tokens = await startTokenServer({ bob: 'token-pass-1' });
  [plain, basic, bearer] = await Promise.all([startRegistry(), startRegistry({ users: { alice: 's3cret-pass' } }), startRegistry({ token: tokens })]);
});
after(async () => {
  await Promise.all([plain?.stop(), basic?.stop(), bearer?.stop(), tokens?.stop()]);
  await fs.rm(tmp, { recursive: true, force: true });
});

async function blobFile(size: number): Promise<{ file: string; digest: string }> {
  const data = crypto.randomBytes(size);
  const file = path.join(tmp, `blob-${size}-${crypto.randomBytes(3).toString('hex')}`);
  await fs.writeFile(file, data);
  return { file, digest: sha256Digest(data) };
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;

test('monolithic upload, HEAD skip on the second push, download returns the same bytes', async () => {
  const c = new RegistryClient(plain.host);
  const b = await blobFile(300_000);
  assert.equal(await c.blobExists('forkd/t1', b.digest), false);
  assert.equal(await c.pushBlob('forkd/t1', b.digest, 300_000, b.file), true);
  assert.equal(c.bytesSent, 300_000);
  assert.equal(await c.pushBlob('forkd/t1', b.digest, 300_000, b.file), false, 'the second push is skipped');
  assert.equal(c.bytesSent, 300_000);
  const got = await readAll(c.blob('forkd/t1', b.digest));
  assert.equal(sha256Digest(got), b.digest);
});

test('chunked upload (POST, PATCH x3, PUT) stores the whole blob', async () => {
  const c = new RegistryClient(plain.host, { chunkBytes: 100_000 });
  const b = await blobFile(250_001);
  assert.equal(await c.pushBlob('forkd/t2', b.digest, 250_001, b.file), true);
  assert.equal(c.bytesSent, 250_001);
  assert.equal(sha256Digest(await readAll(new RegistryClient(plain.host).blob('forkd/t2', b.digest))), b.digest);
});

test('an upload whose bytes do not match the digest is refused by the registry', async () => {
  const c = new RegistryClient(plain.host);
  const b = await blobFile(1000);
  const wrong = sha256Digest('something else');
  await assert.rejects(c.pushBlob('forkd/t3', wrong, 1000, b.file), code('FORKD_E_REGISTRY_ERROR'));
});

test('manifests: put by tag, get by tag and digest (verified), unknown is FORKD_E_REF_NOT_FOUND', async () => {
  const c = new RegistryClient(plain.host);
  const cfg = Buffer.from('{"x":1}');
  const cfgFile = path.join(tmp, 'cfg');
  await fs.writeFile(cfgFile, cfg);
  await c.pushBlob('forkd/t4', sha256Digest(cfg), cfg.length, cfgFile);
  const layer = await blobFile(5000);
  await c.pushBlob('forkd/t4', layer.digest, 5000, layer.file);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.manifest, artifactType: MEDIA.artifact, config: { mediaType: MEDIA.config, digest: sha256Digest(cfg), size: cfg.length }, layers: [{ mediaType: MEDIA.file, digest: layer.digest, size: 5000 }], annotations: { a: 'b' } }));
  const digest = await c.putManifest('forkd/t4', 'v1', manifest);
  const byTag = await c.manifest('forkd/t4', 'v1');
  assert.equal(byTag.digest, digest);
  assert.deepEqual(byTag.bytes, manifest, 'the registry keeps the exact bytes (artifactType survives)');
  assert.equal((await c.manifest('forkd/t4', digest)).digest, digest);
  assert.equal(await c.manifestExists('forkd/t4', digest), true);
  await assert.rejects(c.manifest('forkd/t4', 'nope'), code('FORKD_E_REF_NOT_FOUND'));
  await assert.rejects(c.manifest('forkd/none', 'v1'), code('FORKD_E_REF_NOT_FOUND'));
});

test('basic auth: anonymous and wrong passwords are FORKD_E_REGISTRY_AUTH, the right one works', async () => {
  const b = await blobFile(2000);
  await assert.rejects(new RegistryClient(basic.host).pushBlob('forkd/a', b.digest, 2000, b.file), code('FORKD_E_REGISTRY_AUTH'));
  await assert.rejects(new RegistryClient(basic.host, { credentials: { username: 'alice', password: 'wrong' } }).pushBlob('forkd/a', b.digest, 2000, b.file), code('FORKD_E_REGISTRY_AUTH'));
  const ok = new RegistryClient(basic.host, { credentials: { username: 'alice', password: 's3cret-pass' } });
  assert.equal(await ok.pushBlob('forkd/a', b.digest, 2000, b.file), true);
  assert.equal(sha256Digest(await readAll(ok.blob('forkd/a', b.digest))), b.digest);
});

test("credentials from Docker's config.json (DOCKER_CONFIG) reach the registry", async () => {
  const dir = path.join(tmp, 'docker');
  await fs.mkdir(dir);
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ auths: { [basic.host]: { auth: Buffer.from('alice:s3cret-pass').toString('base64') } } }));
  const creds = await dockerConfigCredentials(basic.host, { DOCKER_CONFIG: dir });
  assert.deepEqual(creds, { username: 'alice', password: 's3cret-pass' });
  assert.equal(await dockerConfigCredentials('other.example:5000', { DOCKER_CONFIG: dir }), null);
  const b = await blobFile(1500);
  assert.equal(await new RegistryClient(basic.host, { credentials: creds }).pushBlob('forkd/b', b.digest, 1500, b.file), true);
});

test('bearer auth: the challenge sends the client to the token endpoint; anonymous and wrong users are refused', async () => {
  const b = await blobFile(4000);
  await assert.rejects(new RegistryClient(bearer.host).pushBlob('forkd/c', b.digest, 4000, b.file), code('FORKD_E_REGISTRY_AUTH'));
  await assert.rejects(new RegistryClient(bearer.host, { credentials: { username: 'bob', password: 'nope' } }).pushBlob('forkd/c', b.digest, 4000, b.file), code('FORKD_E_REGISTRY_AUTH'));
  const before = tokens.requests;
  const ok = new RegistryClient(bearer.host, { credentials: { username: 'bob', password: 'token-pass-1' }, chunkBytes: 1500 });
  assert.equal(await ok.pushBlob('forkd/c', b.digest, 4000, b.file), true, 'chunked upload under a bearer token');
  assert.equal(sha256Digest(await readAll(ok.blob('forkd/c', b.digest))), b.digest);
  assert.ok(tokens.requests > before, 'the token endpoint was asked');
});

test('push access is checked before any work: a read-only or wrong user fails fast, the right one passes', async () => {
  await assert.rejects(new RegistryClient(basic.host, { credentials: { username: 'alice', password: 'wrong' } }).checkPushAccess('forkd/p'), code('FORKD_E_REGISTRY_AUTH'));
  await new RegistryClient(basic.host, { credentials: { username: 'alice', password: 's3cret-pass' } }).checkPushAccess('forkd/p');
  await new RegistryClient(plain.host).checkPushAccess('forkd/p');
});

/**
 * A loopback proxy in front of the real registry that drops the connection of the first blob
 * download after `cutAfter` body bytes; with `ignoreRange` it also strips Range (a registry or
 * CDN that always sends the whole blob). Counts the body bytes it relayed.
 */
async function cuttingProxy(target: string, cutAfter: number, ignoreRange = false): Promise<{ host: string; relayed: number; ranges: string[]; stop(): Promise<void> }> {
  const state = { relayed: 0, ranges: [] as string[], cut: false };
  const server = http.createServer(async (req, res) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host') headers[k] = v;
    if (headers.range) state.ranges.push(headers.range);
    if (ignoreRange) delete headers.range;
    const up = await fetch(`http://${target}${req.url}`, { method: req.method, headers });
    const out: Record<string, string> = {};
    up.headers.forEach((v, k) => { if (k !== 'content-encoding' && k !== 'transfer-encoding') out[k] = v; });
    res.writeHead(up.status, out);
    const isBlob = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
    const cutThis = isBlob && !state.cut;
    let sent = 0;
    for await (const c of (up.body ?? []) as AsyncIterable<Uint8Array>) {
      let chunk = Buffer.from(c);
      if (cutThis && sent + chunk.length > cutAfter) {
        chunk = chunk.subarray(0, cutAfter - sent);
        res.write(chunk);
        state.relayed += chunk.length;
        state.cut = true;
        await new Promise((r) => setTimeout(r, 50));
        res.socket?.destroy();
        return;
      }
      sent += chunk.length;
      state.relayed += chunk.length;
      if (!res.write(chunk)) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get relayed() { return state.relayed; },
    ranges: state.ranges,
    stop: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('a download whose connection drops continues from the last byte (Range), not from zero', async () => {
  const b = await blobFile(3_000_000);
  await new RegistryClient(plain.host).pushBlob('forkd/resume', b.digest, 3_000_000, b.file);
  const proxy = await cuttingProxy(plain.host, 1_000_000);
  try {
    const c = new RegistryClient(proxy.host);
    const got = await readAll(c.blob('forkd/resume', b.digest));
    assert.equal(sha256Digest(got), b.digest, 'the bytes are whole and right');
    assert.equal(c.resumes, 1);
    assert.deepEqual(proxy.ranges, [`bytes=${proxy.ranges[0]?.slice(6)}`]);
    assert.ok(Number(/bytes=(\d+)-/.exec(proxy.ranges[0] ?? '')?.[1]) > 0, 'the second request asked for the rest only');
    assert.ok(c.bytesReceived < 3_300_000, `received ${c.bytesReceived} bytes for a 3,000,000-byte blob`);
  } finally {
    await proxy.stop();
  }
});

test('a resumed download from a server that ignores Range skips what it already has', async () => {
  const b = await blobFile(2_000_000);
  await new RegistryClient(plain.host).pushBlob('forkd/resume2', b.digest, 2_000_000, b.file);
  const proxy = await cuttingProxy(plain.host, 700_000, true);
  try {
    const c = new RegistryClient(proxy.host);
    const got = await readAll(c.blob('forkd/resume2', b.digest));
    assert.equal(got.length, 2_000_000);
    assert.equal(sha256Digest(got), b.digest);
    assert.equal(c.resumes, 1);
  } finally {
    await proxy.stop();
  }
});

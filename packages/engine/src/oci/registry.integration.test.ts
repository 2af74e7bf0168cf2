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

/**
 * Signed pulls against a real registry (Debian's docker-registry on loopback, which has no
 * referrers API: the sha256-<hex> tag fallback is what is exercised). A synthetic snapshot link
 * (no VM) is pushed; a trust policy requiring a key refuses it unsigned (FORKD_E_SIGNATURE_MISSING)
 * and signed by another key (FORKD_E_SIGNATURE_INVALID), with nothing left in the store, and pulls
 * it signed by the right key. Also: provenance (pulled_from) and owner/name[@version] resolution
 * through a hub index, which share this registry and artifact. No VMs (no lock needed).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { ForkdError } from '@forkd/protocol';
import { homeLayout, type HomeLayout } from '../../home/paths.js';
import { readSnapshot } from '../../snapshot/store.js';
import { startRegistry, type TestRegistry } from '../../testing/registry.js';
import { SYNTH_HOST, synthFiles, synthLink } from '../../testing/oci-artifact.js';
import { exportChain, type ExportedLink } from '../export.js';
import { RegistryClient } from '../registry.js';
import { MEDIA } from '../format.js';
import { pullFor } from '../ops.js';
import { generateKeyFiles, loadPrivateKey, type KeyFiles } from './keys.js';
import { attachSignature, fallbackTag } from './signature.js';

let reg: TestRegistry;
let tmp: string;
let link: ExportedLink;
let alice: KeyFiles;
let mallory: KeyFiles;
let ci: KeyFiles;

const code = (c: string) => (e: unknown) => e instanceof ForkdError && e.code === c;

async function pushLink(repo: string, tag: string): Promise<RegistryClient> {
  const c = new RegistryClient(reg.host);
  for (const b of link.blobs) await c.pushBlob(repo, b.digest, b.size, b.path);
  await c.putManifest(repo, tag, link.manifest);
  return c;
}

async function sign(repo: string, key: KeyFiles) {
  return attachSignature(new RegistryClient(reg.host), repo, { digest: link.digest, size: link.manifest.length }, await loadPrivateKey(key.privateKeyFile));
}

async function policy(scopes: Record<string, unknown>): Promise<string> {
  const f = path.join(tmp, `policy-${Math.random().toString(36).slice(2)}.json`);
  await fs.writeFile(f, JSON.stringify({ version: 1, scopes }));
  return f;
}

let n = 0;
async function freshStore(): Promise<HomeLayout> {
  const layout = homeLayout(path.join(tmp, `home-${n++}`));
  await fs.mkdir(layout.snapshots, { recursive: true });
  await fs.mkdir(layout.images, { recursive: true });
  return layout;
}

async function entries(layout: HomeLayout): Promise<string[]> {
  return [...(await fs.readdir(layout.snapshots)), ...(await fs.readdir(layout.images))];
}

before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'forkd-trust-'));
  reg = await startRegistry();
  link = await synthLink(await synthFiles(path.join(tmp, 'src')));
  alice = await generateKeyFiles(path.join(tmp, 'alice.key'));
  mallory = await generateKeyFiles(path.join(tmp, 'mallory.key'));
  ci = await generateKeyFiles(path.join(tmp, 'ci.key'));
});
after(async () => {
  await reg?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

test('keygen: a 0600 private key and a public key; an existing key is never overwritten; a readable key is refused', async () => {
  assert.equal((await fs.stat(alice.privateKeyFile)).mode & 0o777, 0o600);
  assert.match(await fs.readFile(alice.publicKeyFile, 'utf8'), /BEGIN PUBLIC KEY/);
  assert.match(alice.keyId, /^sha256:[0-9a-f]{64}$/);
  assert.notEqual(alice.keyId, mallory.keyId);
  await assert.rejects(generateKeyFiles(alice.privateKeyFile), code('FORKD_E_CONFLICT'));
  const loose = path.join(tmp, 'loose.key');
  await fs.copyFile(alice.privateKeyFile, loose);
  await fs.chmod(loose, 0o644);
  await assert.rejects(loadPrivateKey(loose), code('FORKD_E_INVALID_ARGUMENT'));
  await assert.rejects(loadPrivateKey(alice.publicKeyFile), code('FORKD_E_INVALID_ARGUMENT'));
});

test('required and missing: an unsigned artifact is refused with FORKD_E_SIGNATURE_MISSING, nothing lands', async () => {
  await pushLink('forkd/unsigned', 'v1');
  const store = await freshStore();
  const p = await policy({ [reg.host]: { keys: [alice.publicKeyFile] } });
  await assert.rejects(pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/unsigned:v1`, { trustPolicy: p }), code('FORKD_E_SIGNATURE_MISSING'));
  assert.deepEqual(await entries(store), []);
});

test('required and wrong key: signed by another key is FORKD_E_SIGNATURE_INVALID, nothing lands', async () => {
  await pushLink('forkd/wrong', 'v1');
  const a = await sign('forkd/wrong', mallory);
  assert.equal(a.via, 'tag', "Debian's registry has no referrers API: the tag fallback is used");
  const store = await freshStore();
  const p = await policy({ [`${reg.host}/forkd`]: { keys: [alice.publicKeyFile] } });
  await assert.rejects(pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/wrong:v1`, { trustPolicy: p }), code('FORKD_E_SIGNATURE_INVALID'));
  assert.deepEqual(await entries(store), []);
});

test('present and right: signed by the required key, pulled and verified; the fallback index is a real tag', async () => {
  const client = await pushLink('forkd/signed', 'v1');
  await sign('forkd/signed', mallory);
  const a = await sign('forkd/signed', alice);
  const index = JSON.parse((await client.manifest('forkd/signed', fallbackTag(link.digest))).bytes.toString('utf8')) as { mediaType: string; manifests: Array<{ digest: string }> };
  assert.equal(index.mediaType, MEDIA.layoutIndex);
  assert.equal(index.manifests.length, 2, 'both signatures are listed: the second push kept the first');
  assert.ok(index.manifests.some((m) => m.digest === a.signatureDigest));
  const store = await freshStore();
  const p = await policy({ '*': { require: 'none' }, [`${reg.host}/forkd/signed`]: { keys: [alice.publicKeyFile] } });
  const r = await pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/signed:v1`, { trustPolicy: p });
  assert.equal(r.verification.status, 'verified');
  assert.deepEqual(r.verification.signers, [alice.keyId]);
  assert.equal(r.verification.scope, `${reg.host}/forkd/signed`);
  const m = (await readSnapshot(store, r.tag)).manifest;
  assert.deepEqual({ ...m.pulled_from, at: undefined }, { ref: `${reg.host}/forkd/signed:v1`, digest: link.digest, verification: 'verified', signers: [alice.keyId], at: undefined }, 'the snapshot records where it came from and who signed');
});

test("provenance is this store's: an artifact's own pulled_from claim is ignored, and a re-export carries none", async () => {
  const forged = await synthLink(await synthFiles(path.join(tmp, 'forged-src'), 'forged'), {
    config: (c) => {
      (c.snapshot as Record<string, unknown>).pulled_from = { ref: 'trusted.example/official:v1', digest: `sha256:${'0'.repeat(64)}`, verification: 'verified', signers: ['sha256:someone'], at: '2020-01-01T00:00:00Z' };
    },
  });
  const c = new RegistryClient(reg.host);
  for (const b of forged.blobs) await c.pushBlob('forkd/forged', b.digest, b.size, b.path);
  await c.putManifest('forkd/forged', 'v1', forged.manifest);
  const store = await freshStore();
  const r = await pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/forged:v1`, {});
  const m = (await readSnapshot(store, r.tag)).manifest;
  assert.equal(m.pulled_from?.ref, `${reg.host}/forkd/forged:v1`);
  assert.equal(m.pulled_from?.verification, 'not-required');
  assert.deepEqual(m.pulled_from?.signers, []);
  const work = path.join(tmp, 'reexport');
  await fs.mkdir(work);
  const [again] = await exportChain(store, r.tag, work);
  const config = JSON.parse(await fs.readFile(again!.blobs.find((b) => b.digest === JSON.parse(again!.manifest.toString()).config.digest)!.path, 'utf8'));
  assert.equal('pulled_from' in config.snapshot, false);
});

test('require all: one of two required keys is not enough; require any: one is', async () => {
  await pushLink('forkd/two', 'v1');
  await sign('forkd/two', alice);
  const all = await policy({ [reg.host]: { keys: [alice.publicKeyFile, ci.publicKeyFile] } });
  const store = await freshStore();
  await assert.rejects(pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/two:v1`, { trustPolicy: all }), code('FORKD_E_SIGNATURE_INVALID'));
  assert.deepEqual(await entries(store), []);
  const any = await policy({ [reg.host]: { keys: [ci.publicKeyFile, alice.publicKeyFile], require: 'any' } });
  const r = await pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/two:v1`, { trustPolicy: any });
  assert.deepEqual(r.verification.signers, [alice.keyId]);
});

test('--insecure-skip-verify pulls unsigned content and says so; an unmatched scope requires nothing', async () => {
  await pushLink('forkd/skip', 'v1');
  const p = await policy({ [`${reg.host}/forkd/skip`]: { keys: [alice.publicKeyFile] } });
  const messages: string[] = [];
  const r = await pullFor(await freshStore(), async () => SYNTH_HOST, `${reg.host}/forkd/skip:v1`, { trustPolicy: p, insecureSkipVerify: true }, (e) => messages.push(e.message));
  assert.equal(r.verification.status, 'skipped');
  assert.ok(messages.some((m) => m.includes('WARNING') && m.includes('insecure-skip-verify')));
  const other = await policy({ [`${reg.host}/forkd/skipped-not`]: { keys: [alice.publicKeyFile] } });
  const r2 = await pullFor(await freshStore(), async () => SYNTH_HOST, `${reg.host}/forkd/skip:v1`, { trustPolicy: other });
  assert.equal(r2.verification.status, 'not-required', 'a scope is a repository prefix at a /, not a string prefix');
});

test('the store\'s own trust-policy.json applies when no file is named; a malformed policy is FORKD_E_TRUST_POLICY_INVALID', async () => {
  await pushLink('forkd/home', 'v1');
  const store = await freshStore();
  await fs.writeFile(path.join(store.root, 'trust-policy.json'), JSON.stringify({ version: 1, scopes: { '*': { keys: [alice.publicKeyFile] } } }));
  await assert.rejects(pullFor(store, async () => SYNTH_HOST, `${reg.host}/forkd/home:v1`, {}), code('FORKD_E_SIGNATURE_MISSING'));
  for (const bad of ['{', JSON.stringify({ version: 2, scopes: {} }), JSON.stringify({ version: 1, scopes: { '*': { keys: [] } } }), JSON.stringify({ version: 1, scopes: { '*': { keys: ['/nonexistent.pub'] } } }), JSON.stringify({ version: 1, scopes: { '*': { keys: [alice.privateKeyFile] } } })]) {
    const f = path.join(tmp, 'bad.json');
    await fs.writeFile(f, bad);
    await assert.rejects(pullFor(await freshStore(), async () => SYNTH_HOST, `${reg.host}/forkd/home:v1`, { trustPolicy: f }), code('FORKD_E_TRUST_POLICY_INVALID'), bad);
  }
});

test('owner/name[@version] resolves through a hub index (file or loopback URL), pinned by digest; bad names and entries are clear errors', async () => {
  await pushLink('forkd/hubbed', 'v7');
  const index = { schema_version: 1, packages: { 'forkd/hubbed': { description: 'synthetic', versions: { latest: { ref: `${reg.host}/forkd/hubbed:v7`, digest: link.digest }, old: { url: 'https://example.invalid/x.tar.zst', sha256: 'ab' } } } } };
  const file = path.join(tmp, 'registry.json');
  await fs.writeFile(file, JSON.stringify(index));
  const r = await pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed', { hub: file });
  assert.equal(r.reference, `${reg.host}/forkd/hubbed@${link.digest}`);
  assert.equal(r.hub_name, 'forkd/hubbed@latest');
  // Without --hub the operator's FORKD_HUB applies (what the daemon's REST pull uses).
  process.env.FORKD_HUB = file;
  try {
    const viaEnv = await pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed');
    assert.equal(viaEnv.hub_name, 'forkd/hubbed@latest');
  } finally {
    delete process.env.FORKD_HUB;
  }
  const server = http.createServer((_req, res) => res.end(JSON.stringify(index)));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/registry.json`;
    const r2 = await pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed@latest', { hub: url });
    assert.equal(r2.digest, link.digest);
  } finally {
    server.close();
  }
  await assert.rejects(pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed@nope', { hub: file }), code('FORKD_E_REF_NOT_FOUND'));
  await assert.rejects(pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/missing', { hub: file }), code('FORKD_E_REF_NOT_FOUND'));
  await assert.rejects(pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed@old', { hub: file }), code('FORKD_E_NOT_IMPLEMENTED'));
  await fs.writeFile(file, JSON.stringify({ schema_version: 2, packages: {} }));
  await assert.rejects(pullFor(await freshStore(), async () => SYNTH_HOST, 'forkd/hubbed', { hub: file }), code('FORKD_E_ARTIFACT_INVALID'));
});

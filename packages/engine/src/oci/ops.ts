/** push, pull, pack and unpack: the engine's entry points for snapshots as OCI artifacts. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { FORKD_VERSION, assertValidTag } from '@forkd/protocol';
import type { HomeLayout } from '../home/paths.js';
import type { Platform } from '../platform.js';
import { type ProgressFn, noProgress } from '../progress.js';
import { SnapshotCatalog } from '../snapshot/catalog.js';
import { readSnapshot } from '../snapshot/store.js';
import { ensurePrivateDir, stagingOwnerSuffix } from '../util/staging.js';
import { STAGING_PREFIX } from '../home/paths.js';
import { dockerConfigCredentials, type Credentials } from './auth.js';
import { exportChain } from './export.js';
import { importArtifact, type BlobSource, type ImportResult } from './import.js';
import { stagePack, writePack } from './layout.js';
import { parseReference } from './reference.js';
import { RegistryClient } from './registry.js';
import type { HostCompat } from './format.js';
import { loadPrivateKey } from './trust/keys.js';
import { isHubName, resolveHubName } from './hub.js';
import { defaultPolicyFile, loadTrustPolicy, ruleFor } from './trust/policy.js';
import { attachSignature, verifySignatures, type Attached } from './trust/signature.js';

export interface RegistryAccess {
  /** Explicit credentials; otherwise Docker's config.json is consulted; otherwise anonymous. */
  credentials?: Credentials | null;
  scheme?: 'http' | 'https';
}

export interface PushResult {
  reference: string;
  digest: string;
  links: Array<{ tag: string; digest: string }>;
  /** Bytes uploaded (blobs the registry already had are not sent). */
  bytes_sent: number;
  /** Bytes of every blob of the chain (what a push to an empty registry sends). */
  bytes_total: number;
  blobs_skipped: number;
  /** The signature attached to the head (push --sign). */
  signature?: { digest: string; key_id: string; via: Attached['via'] };
}

/** What a pull checked before anything became visible. */
export interface Verification {
  /** verified: the policy's keys signed it; not-required: no rule asks; skipped: --insecure-skip-verify. */
  status: 'verified' | 'not-required' | 'skipped';
  /** Key ids whose valid signatures were found. */
  signers: string[];
  /** The policy scope that applied, if any. */
  scope: string | null;
  policy: string | null;
}

export interface PullOptions extends RegistryAccess {
  tag?: string;
  /** The trust policy file (default: FORKD_TRUST_POLICY, else FORKD_HOME/trust-policy.json, else none). */
  trustPolicy?: string;
  /** Pull even when the policy's signatures are missing or wrong (warned about loudly). */
  insecureSkipVerify?: boolean;
  /** A hub index (registry.json, file or URL): `owner/name[@version]` references resolve through it. */
  hub?: string;
}

export interface PullResult extends ImportResult {
  reference: string;
  bytes_received: number;
  verification: Verification;
  /** The hub name the reference was resolved from (owner/name@version), if any. */
  hub_name?: string;
}

async function workDir(layout: HomeLayout, kind: string): Promise<string> {
  await ensurePrivateDir(layout.snapshots);
  const dir = path.join(layout.snapshots, `${STAGING_PREFIX}${kind}-${stagingOwnerSuffix()}-${crypto.randomBytes(4).toString('hex')}`);
  await fs.mkdir(dir, { mode: 0o700 });
  return dir;
}

async function clientFor(registry: string, access: RegistryAccess): Promise<RegistryClient> {
  const credentials = access.credentials !== undefined ? access.credentials : await dockerConfigCredentials(registry);
  return new RegistryClient(registry, { credentials, ...(access.scheme ? { scheme: access.scheme } : {}) });
}

export async function hostCompat(platform: Platform): Promise<HostCompat> {
  const env = await platform.resolve();
  return { qemuVersion: env.qemuVersion, accel: env.accel, kernelSha256: env.kernel.sha256, initramfsSha256: env.initramfs.sha256, agentVersion: FORKD_VERSION, kernelPath: env.kernel.path };
}

/** Pushes a snapshot and every link under it; the head is tagged with ref's tag, links go by digest. */
export async function pushSnapshot(layout: HomeLayout, tag: string, refText: string, access: RegistryAccess & { sign?: string } = {}, onProgress: ProgressFn = noProgress): Promise<PushResult> {
  assertValidTag(tag);
  const ref = parseReference(refText);
  await readSnapshot(layout, tag);
  // The key is read before any slow work: a wrong path or mode fails in a millisecond.
  const key = access.sign !== undefined ? await loadPrivateKey(access.sign) : null;
  const client = await clientFor(ref.registry, access);
  await client.checkPushAccess(ref.repository);
  const dir = await workDir(layout, 'push');
  try {
    const links = await exportChain(layout, tag, dir, onProgress);
    const total = links.reduce((s, l) => s + l.blobs.reduce((t, b) => t + b.size, 0), 0);
    let skipped = 0;
    let sent = 0;
    const started = Date.now();
    for (const l of links) {
      for (const b of l.blobs) {
        const pushed = await client.pushBlob(ref.repository, b.digest, b.size, b.path, (n) => {
          sent += n;
          onProgress({ phase: 'push', message: `${l.tag}: ${(sent / 1048576).toFixed(0)} MiB sent (${(sent / 1048576 / Math.max(0.001, (Date.now() - started) / 1000)).toFixed(1)} MiB/s)`, fraction: total ? sent / total : 1 });
        });
        if (!pushed) skipped++;
      }
      const isHead = l === links[links.length - 1];
      await client.putManifest(ref.repository, isHead && !ref.reference.startsWith('sha256:') ? ref.reference : l.digest, l.manifest);
    }
    const head = links[links.length - 1]!;
    let signature: PushResult['signature'];
    if (key) {
      onProgress({ phase: 'sign', message: `signing ${head.digest.slice(0, 19)}` });
      const a = await attachSignature(client, ref.repository, { digest: head.digest, size: head.manifest.length }, key);
      signature = { digest: a.signatureDigest, key_id: a.keyId, via: a.via };
    }
    onProgress({ phase: 'done', message: `pushed ${tag} to ${refText} (${head.digest.slice(0, 19)}, ${(client.bytesSent / 1048576).toFixed(1)} MiB sent${signature ? `, signed by ${signature.key_id.slice(0, 19)}` : ''})`, fraction: 1 });
    return { reference: refText, digest: head.digest, links: links.map((l) => ({ tag: l.tag, digest: l.digest })), bytes_sent: client.bytesSent, bytes_total: total, blobs_skipped: skipped, ...(signature ? { signature } : {}) };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

export async function pullSnapshot(layout: HomeLayout, platform: Platform, refText: string, opts: PullOptions = {}, onProgress: ProgressFn = noProgress): Promise<PullResult> {
  return pullFor(layout, () => hostCompat(platform), refText, opts, onProgress);
}

/**
 * pullSnapshot against a given host description (tests describe a host without booting one). The
 * reference is resolved to a digest once; the signatures are checked against that digest and the
 * import then fetches by that digest, so what was verified is what lands (a tag moved meanwhile
 * changes nothing).
 */
export async function pullFor(layout: HomeLayout, host: () => Promise<HostCompat>, target: string, opts: PullOptions = {}, onProgress: ProgressFn = noProgress): Promise<PullResult> {
  let refText = target;
  let hubName: string | undefined;
  // The operator's FORKD_HUB is the default: the daemon resolves hub names through it, and a REST
  // caller cannot name another index (a file path or URL the daemon would read for them).
  const hub = opts.hub ?? process.env.FORKD_HUB;
  if (hub !== undefined && isHubName(target)) {
    const h = await resolveHubName(target, hub);
    refText = h.ref;
    hubName = `${h.name}@${h.version}`;
    onProgress({ phase: 'resolve', message: `${hubName} is ${refText}` });
  }
  const ref = parseReference(refText);
  if (opts.tag !== undefined) assertValidTag(opts.tag);
  const policyFile = opts.trustPolicy ?? (await defaultPolicyFile(layout.root));
  const policy = policyFile !== null ? await loadTrustPolicy(policyFile) : null;
  const rule = policy ? ruleFor(policy, ref.registry, ref.repository) : null;
  const client = await clientFor(ref.registry, opts);
  const head = await client.manifest(ref.repository, ref.reference);
  let verification: Verification = { status: 'not-required', signers: [], scope: rule?.scope ?? null, policy: policyFile };
  if (rule && rule.require !== 'none') {
    if (opts.insecureSkipVerify) {
      onProgress({ phase: 'verify', message: `WARNING: --insecure-skip-verify: NOT checking the signatures the trust policy (scope ${rule.scope}) requires for ${refText}` });
      verification = { ...verification, status: 'skipped' };
    } else {
      onProgress({ phase: 'verify', message: `verifying signatures of ${head.digest.slice(0, 19)} (scope ${rule.scope})` });
      const v = await verifySignatures(client, ref.repository, head.digest, rule, refText);
      verification = { ...verification, status: 'verified', signers: v.signers };
    }
  }
  const source: BlobSource = {
    describe: `${ref.registry}/${ref.repository}`,
    manifest: (r) => client.manifest(ref.repository, r),
    blob: (d) => client.blob(ref.repository, d),
  };
  const r = await importArtifact(layout, source, head.digest, { host: await host(), refText, onProgress, verification, ...(opts.tag !== undefined ? { tag: opts.tag } : {}) });
  return { ...r, reference: refText, bytes_received: client.bytesReceived, verification, ...(hubName ? { hub_name: hubName } : {}) };
}

export async function packSnapshot(layout: HomeLayout, tag: string, file: string, opts: { description?: string } = {}, onProgress: ProgressFn = noProgress): Promise<{ file: string; bytes: number; digest: string }> {
  assertValidTag(tag);
  await readSnapshot(layout, tag);
  const dir = await workDir(layout, 'pack');
  try {
    const links = await exportChain(layout, tag, dir, onProgress);
    onProgress({ phase: 'pack', message: `writing ${file}` });
    const { bytes } = await writePack(links, tag, file, opts.description);
    const digest = links[links.length - 1]!.digest;
    onProgress({ phase: 'done', message: `packed ${tag} into ${file} (${(bytes / 1048576).toFixed(1)} MiB)`, fraction: 1 });
    return { file, bytes, digest };
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Unpacks a pack. With force, a head tag already taken by another snapshot is removed first, and
 * only after the pack was read and verified (a pack that fails leaves the old snapshot as it was).
 */
export async function unpackSnapshot(layout: HomeLayout, platform: Platform, file: string, opts: { tag?: string; force?: boolean } = {}, onProgress: ProgressFn = noProgress): Promise<ImportResult & { file: string }> {
  return unpackFor(layout, await hostCompat(platform), file, opts, onProgress);
}

/** unpackSnapshot against a given host description (tests describe a host without booting one). */
export async function unpackFor(layout: HomeLayout, host: HostCompat, file: string, opts: { tag?: string; force?: boolean } = {}, onProgress: ProgressFn = noProgress): Promise<ImportResult & { file: string }> {
  if (opts.tag !== undefined) assertValidTag(opts.tag);
  onProgress({ phase: 'unpack', message: `reading ${file}` });
  const stage = await stagePack(layout, file);
  try {
    const tag = opts.tag ?? (stage.refName !== null ? assertValidTag(stage.refName, 'pack tag') : undefined);
    const run = () => importArtifact(layout, stage.source, stage.headRef, { host, refText: path.basename(file), onProgress, ...(tag !== undefined ? { tag } : {}) });
    try {
      return { ...(await run()), file };
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (!opts.force || code !== 'FORKD_E_SNAPSHOT_EXISTS' || tag === undefined) throw e;
      await new SnapshotCatalog(layout).remove(tag);
      return { ...(await run()), file };
    }
  } finally {
    await fs.rm(stage.dir, { recursive: true, force: true });
  }
}

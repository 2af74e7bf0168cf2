/**
 * Signatures as OCI artifacts. A signature is a manifest of artifactType MEDIA_SIG.artifact whose
 * `subject` is the signed manifest, with one layer: a small JSON document holding the ed25519
 * signature over "forkd-signature-v1\n<manifest digest>\n" and the signer's public key. It is
 * found through the referrers API where the registry has it, else through the spec's tag
 * fallback: an image index tagged `sha256-<hex>` listing the referrers (kept by the pusher).
 * Nothing in a signature is trusted: the key that counts is the policy's, the key id in the
 * document only says which policy key to try first.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import type { RegistryClient } from '../registry.js';
import { sha256Digest } from '../digest.js';
import { MEDIA } from '../format.js';
import { keyIdOf } from './keys.js';
import type { TrustRule } from './policy.js';

export const MEDIA_SIG = {
  artifact: 'application/vnd.forkd.signature.v1',
  layer: 'application/vnd.forkd.signature.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
} as const;

const EMPTY = Buffer.from('{}');

export function signedPayload(manifestDigest: string): Buffer {
  return Buffer.from(`forkd-signature-v1\n${manifestDigest}\n`);
}

const SignatureDoc = z.object({
  version: z.literal(1),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  key_id: z.string().max(100),
  public_key: z.string().max(4096),
  signature: z.string().max(1024),
});
type SignatureDoc = z.output<typeof SignatureDoc>;

const Descriptor = z.object({ mediaType: z.string().max(255), digest: z.string().regex(/^sha256:[0-9a-f]{64}$/), size: z.number().int().nonnegative(), artifactType: z.string().max(255).optional() }).passthrough();
const IndexSchema = z.object({ schemaVersion: z.literal(2), manifests: z.array(Descriptor).max(10_000) }).passthrough();
const SigManifest = z.object({
  artifactType: z.literal(MEDIA_SIG.artifact),
  subject: Descriptor,
  layers: z.array(Descriptor).length(1),
}).passthrough();

export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

export interface Attached {
  signatureDigest: string;
  keyId: string;
  /** 'referrers': the registry keeps the link; 'tag': the sha256-<hex> index was updated. */
  via: 'referrers' | 'tag';
}

/** Signs manifestDigest with key and attaches the signature to it in repo. */
export async function attachSignature(client: RegistryClient, repo: string, subject: { digest: string; size: number }, key: crypto.KeyObject): Promise<Attached> {
  const keyId = keyIdOf(key);
  const doc: SignatureDoc = {
    version: 1,
    digest: subject.digest,
    key_id: keyId,
    public_key: crypto.createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string,
    signature: crypto.sign(null, signedPayload(subject.digest), key).toString('base64'),
  };
  const docBytes = Buffer.from(JSON.stringify(doc));
  await client.pushBytes(repo, EMPTY);
  await client.pushBytes(repo, docBytes);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.manifest,
    artifactType: MEDIA_SIG.artifact,
    config: { mediaType: MEDIA_SIG.empty, digest: sha256Digest(EMPTY), size: EMPTY.length },
    layers: [{ mediaType: MEDIA_SIG.layer, digest: sha256Digest(docBytes), size: docBytes.length }],
    subject: { mediaType: MEDIA.manifest, digest: subject.digest, size: subject.size },
    annotations: { 'org.forkd.signature.key': keyId },
  }));
  const sigDigest = sha256Digest(manifest);
  const put = await client.putManifestDetailed(repo, sigDigest, manifest);
  if (put.subjectKept) return { signatureDigest: sigDigest, keyId, via: 'referrers' };
  // The tag fallback: read the index (if any), add this signature, put it back.
  const tag = fallbackTag(subject.digest);
  let index: { schemaVersion: 2; mediaType: string; manifests: Array<Record<string, unknown>> } = { schemaVersion: 2, mediaType: MEDIA.layoutIndex, manifests: [] };
  try {
    const cur = await client.manifest(repo, tag);
    const parsed = IndexSchema.parse(JSON.parse(cur.bytes.toString('utf8')));
    index = { ...index, manifests: parsed.manifests };
  } catch (e) {
    // None yet: a new index. One that does not parse is replaced: it only lists referrers, each verified on its own.
    if (e instanceof ForkdError && e.code !== 'FORKD_E_REF_NOT_FOUND') throw e;
  }
  if (!index.manifests.some((m) => m.digest === sigDigest)) index.manifests.push({ mediaType: MEDIA.manifest, artifactType: MEDIA_SIG.artifact, digest: sigDigest, size: manifest.length, annotations: { 'org.forkd.signature.key': keyId } });
  await client.putManifest(repo, tag, Buffer.from(JSON.stringify(index)), MEDIA.layoutIndex);
  return { signatureDigest: sigDigest, keyId, via: 'tag' };
}

/** The signature manifests listed for digest (referrers API and tag fallback, merged, capped). */
async function listSignatures(client: RegistryClient, repo: string, digest: string): Promise<string[]> {
  const found = new Set<string>();
  const add = (bytes: Buffer | null) => {
    if (!bytes) return;
    let idx;
    try {
      idx = IndexSchema.parse(JSON.parse(bytes.toString('utf8')));
    } catch {
      return; // an index that does not parse lists nothing we could trust anyway
    }
    for (const m of idx.manifests) if ((m.artifactType ?? MEDIA_SIG.artifact) === MEDIA_SIG.artifact && m.mediaType === MEDIA.manifest) found.add(m.digest);
  };
  add(await client.referrers(repo, digest));
  try {
    add((await client.manifest(repo, fallbackTag(digest))).bytes);
  } catch (e) {
    if (!(e instanceof ForkdError && e.code === 'FORKD_E_REF_NOT_FOUND')) throw e;
  }
  return [...found].slice(0, OCI_LIMITS.maxSignatures);
}

export interface Verdict {
  /** Key ids of the policy's keys whose valid signature was found. */
  signers: string[];
  /** Signatures looked at. */
  seen: number;
}

/**
 * Verifies digest against a rule: throws FORKD_E_SIGNATURE_MISSING when there is no signature at
 * all, FORKD_E_SIGNATURE_INVALID when signatures exist but the rule's keys are not satisfied.
 */
export async function verifySignatures(client: RegistryClient, repo: string, digest: string, rule: TrustRule, what: string): Promise<Verdict> {
  const sigs = await listSignatures(client, repo, digest);
  const signers = new Set<string>();
  let seen = 0;
  for (const s of sigs) {
    let doc: SignatureDoc;
    try {
      const m = SigManifest.parse(JSON.parse((await client.manifest(repo, s)).bytes.toString('utf8')));
      if (m.subject.digest !== digest || m.layers[0]!.size > OCI_LIMITS.maxSignatureBytes) continue;
      doc = SignatureDoc.parse(JSON.parse((await client.smallBlob(repo, m.layers[0]!.digest, OCI_LIMITS.maxSignatureBytes)).toString('utf8')));
    } catch (e) {
      if (e instanceof ForkdError && (e.code === 'FORKD_E_REGISTRY_ERROR' || e.code === 'FORKD_E_REGISTRY_AUTH')) throw e;
      continue; // a malformed or lying signature artifact counts as no signature
    }
    seen++;
    if (doc.digest !== digest) continue;
    const sig = Buffer.from(doc.signature, 'base64');
    for (const k of rule.keys) {
      if (signers.has(k.id)) continue;
      if (crypto.verify(null, signedPayload(digest), k.key, sig)) signers.add(k.id);
    }
  }
  const ok = rule.require === 'any' ? signers.size > 0 : rule.keys.every((k) => signers.has(k.id));
  if (ok) return { signers: [...signers], seen };
  const wanted = rule.keys.filter((k) => !signers.has(k.id)).map((k) => k.id.slice(0, 19));
  if (seen === 0) throw new ForkdError('FORKD_E_SIGNATURE_MISSING', `${what} is not signed; the trust policy (scope ${rule.scope}) requires ${rule.require === 'any' ? 'one of ' : ''}${wanted.join(', ')}`, { digest, scope: rule.scope, required: wanted });
  throw new ForkdError('FORKD_E_SIGNATURE_INVALID', `${what} has ${seen} signature(s), none valid for ${rule.require === 'any' ? 'any of ' : ''}${wanted.join(', ')} required by the trust policy (scope ${rule.scope})`, { digest, scope: rule.scope, required: wanted });
}

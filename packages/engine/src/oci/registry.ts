/**
 * A client for the OCI distribution API: blob existence (HEAD), blob download (verified by the
 * caller while streaming), monolithic and chunked uploads (POST, PATCH..., PUT ?digest=),
 * manifests by tag or digest. Anonymous, Basic and Bearer-token auth, answered from the 401's
 * challenge. Every byte moved is counted, so tests and benchmarks can say what travelled.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { ForkdError, OCI_LIMITS } from '@forkd/protocol';
import { basicHeader, parseChallenge, type Credentials } from './auth.js';
import { defaultScheme, isDigest } from './reference.js';
import { sha256Digest } from './digest.js';
import { MEDIA } from './format.js';

export interface RegistryClientOptions {
  credentials?: Credentials | null;
  /** Default: http for loopback hosts, https otherwise. */
  scheme?: 'http' | 'https';
  /** Uploads larger than this go in chunks of this size (default OCI_LIMITS.uploadChunkBytes). */
  chunkBytes?: number;
  /** Timeout of a request that carries no blob. */
  requestTimeoutMs?: number;
}

interface RequestOptions {
  repo: string;
  actions: 'pull' | 'pull,push';
  headers?: Record<string, string>;
  /** A factory: a request is sent again after an auth challenge, with a fresh body. */
  body?: () => BodyInit;
  /** Streams bodies: no overall timeout. */
  streaming?: boolean;
  /** An absolute URL (an upload location) instead of a path under /v2/. */
  url?: string;
}

export class RegistryClient {
  readonly base: string;
  bytesSent = 0;
  bytesReceived = 0;
  /** Blob downloads continued after a dropped connection (for progress and tests). */
  resumes = 0;
  private readonly tokens = new Map<string, string>();
  private basic: string | null = null;

  constructor(
    readonly registry: string,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.base = `${opts.scheme ?? defaultScheme(registry)}://${registry}`;
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const r = await this.request('HEAD', `/v2/${repo}/blobs/${digest}`, { repo, actions: 'pull' });
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw await registryError(r, `HEAD blob ${digest}`);
  }

  /**
   * The blob's bytes as they arrive (counted); the caller verifies the digest while consuming.
   * A dropped connection does not restart the pull: the download continues from the last byte
   * received with a Range request (a registry that ignores Range sends the whole blob again and
   * the bytes already yielded are skipped), up to OCI_LIMITS.maxBlobResumes times.
   */
  async *blob(repo: string, digest: string): AsyncGenerator<Uint8Array> {
    let received = 0;
    for (let resumes = 0; ; resumes++) {
      const headers: Record<string, string> = received > 0 ? { range: `bytes=${received}-` } : {};
      const r = await this.request('GET', `/v2/${repo}/blobs/${digest}`, { repo, actions: 'pull', streaming: true, headers });
      if (r.status === 404) throw new ForkdError('FORKD_E_REF_NOT_FOUND', `${this.registry}/${repo} has no blob ${digest}`, { digest });
      let skip = 0;
      if (received > 0 && r.status === 206) {
        const start = /^bytes (\d+)-/.exec(r.headers.get('content-range') ?? '');
        if (!start || Number(start[1]) !== received) {
          await r.body?.cancel();
          throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${this.registry} resumed blob ${digest} at the wrong offset (${r.headers.get('content-range')}, asked ${received})`, { digest });
        }
      } else if (r.status === 200) {
        skip = received;
      } else {
        throw await registryError(r, `GET blob ${digest}`);
      }
      if (!r.body) return;
      try {
        for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
          this.bytesReceived += c.length;
          if (skip >= c.length) { skip -= c.length; continue; }
          const fresh = skip > 0 ? c.subarray(skip) : c;
          skip = 0;
          received += fresh.length;
          yield fresh;
        }
        if (skip > 0) throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${this.registry} sent blob ${digest} shorter on a resumed download`, { digest });
        return;
      } catch (e) {
        if (e instanceof ForkdError || resumes >= OCI_LIMITS.maxBlobResumes) {
          if (e instanceof ForkdError) throw e;
          throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${this.registry}: blob ${digest} download dropped ${resumes + 1} times (${(e as Error).message})`, { digest }, { cause: e });
        }
        this.resumes++;
      }
    }
  }

  /** Uploads a file as a blob unless the registry has it. Returns whether bytes were sent. */
  async pushBlob(repo: string, digest: string, size: number, file: string, onBytes?: (n: number) => void): Promise<boolean> {
    if (await this.blobExists(repo, digest)) return false;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { repo, actions: 'pull,push', headers: { 'content-length': '0' } });
    if (start.status !== 202) throw await registryError(start, 'starting an upload');
    let location = this.location(start);
    const chunk = this.opts.chunkBytes ?? OCI_LIMITS.uploadChunkBytes;
    if (size > chunk) {
      for (let off = 0; off < size; off += chunk) {
        const end = Math.min(size, off + chunk);
        const r = await this.request('PATCH', '', {
          repo,
          actions: 'pull,push',
          url: location,
          streaming: true,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${off}-${end - 1}`, 'content-length': String(end - off) },
          body: () => fileBody(file, off, end),
        });
        if (r.status !== 202) throw await registryError(r, `uploading bytes ${off}-${end - 1} of ${digest}`);
        location = this.location(r);
        this.bytesSent += end - off;
        onBytes?.(end - off);
      }
      const done = await this.request('PUT', '', { repo, actions: 'pull,push', url: withDigest(location, digest), headers: { 'content-length': '0' } });
      if (done.status !== 201) throw await registryError(done, `finishing the upload of ${digest}`);
    } else {
      const r = await this.request('PUT', '', {
        repo,
        actions: 'pull,push',
        url: withDigest(location, digest),
        streaming: true,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: () => fileBody(file, 0, size),
      });
      if (r.status !== 201) throw await registryError(r, `uploading ${digest}`);
      this.bytesSent += size;
      onBytes?.(size);
    }
    return true;
  }

  /** Uploads a small in-memory blob (monolithic) unless the registry has it. */
  async pushBytes(repo: string, data: Buffer): Promise<string> {
    const digest = sha256Digest(data);
    if (await this.blobExists(repo, digest)) return digest;
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { repo, actions: 'pull,push', headers: { 'content-length': '0' } });
    if (start.status !== 202) throw await registryError(start, 'starting an upload');
    await start.body?.cancel();
    const r = await this.request('PUT', '', { repo, actions: 'pull,push', url: withDigest(this.location(start), digest), headers: { 'content-type': 'application/octet-stream' }, body: () => new Uint8Array(data) });
    if (r.status !== 201) throw await registryError(r, `uploading ${digest}`);
    await r.body?.cancel();
    this.bytesSent += data.length;
    return digest;
  }

  /**
   * Proves push access before slow work: opens an upload session and cancels it (DELETE), so wrong
   * credentials are an error in a second, not after compressing gigabytes.
   */
  async checkPushAccess(repo: string): Promise<void> {
    const start = await this.request('POST', `/v2/${repo}/blobs/uploads/`, { repo, actions: 'pull,push', headers: { 'content-length': '0' } });
    if (start.status !== 202) throw await registryError(start, 'starting an upload');
    await start.body?.cancel();
    const r = await this.request('DELETE', '', { repo, actions: 'pull,push', url: this.location(start) }).catch(() => null);
    await r?.body?.cancel();
  }

  async manifestExists(repo: string, digest: string): Promise<boolean> {
    const r = await this.request('HEAD', `/v2/${repo}/manifests/${digest}`, { repo, actions: 'pull', headers: { accept: MEDIA.manifest } });
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw await registryError(r, `HEAD manifest ${digest}`);
  }

  /** A manifest's bytes (size-capped while reading) and digest; a digest reference is verified. */
  async manifest(repo: string, reference: string, accept = `${MEDIA.manifest}, ${MEDIA.layoutIndex};q=0.5`): Promise<{ bytes: Buffer; digest: string; mediaType: string }> {
    const r = await this.request('GET', `/v2/${repo}/manifests/${reference}`, { repo, actions: 'pull', headers: { accept } });
    if (r.status === 404) throw new ForkdError('FORKD_E_REF_NOT_FOUND', `${this.registry}/${repo} has no manifest ${reference}`, { reference });
    if (r.status !== 200) throw await registryError(r, `GET manifest ${reference}`);
    const declared = Number(r.headers.get('content-length') ?? '0');
    if (declared > OCI_LIMITS.maxManifestBytes) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `manifest ${reference} is ${declared} bytes (limit ${OCI_LIMITS.maxManifestBytes})`);
    const bytes = await readCapped(r, OCI_LIMITS.maxManifestBytes, `manifest ${reference}`);
    this.bytesReceived += bytes.length;
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && digest !== reference) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `manifest ${reference} arrived with digest ${digest}`, { expected: reference, got: digest });
    return { bytes, digest, mediaType: (r.headers.get('content-type') ?? '').split(';')[0]!.trim() };
  }

  async putManifest(repo: string, reference: string, bytes: Buffer, mediaType: string = MEDIA.manifest): Promise<string> {
    return (await this.putManifestDetailed(repo, reference, bytes, mediaType)).digest;
  }

  /**
   * Puts a manifest and says whether the registry took note of its `subject` (it answers with an
   * `OCI-Subject` header when it keeps referrers itself; otherwise the tag fallback is the client's job).
   */
  async putManifestDetailed(repo: string, reference: string, bytes: Buffer, mediaType: string = MEDIA.manifest): Promise<{ digest: string; subjectKept: boolean }> {
    const r = await this.request('PUT', `/v2/${repo}/manifests/${reference}`, { repo, actions: 'pull,push', headers: { 'content-type': mediaType }, body: () => new Uint8Array(bytes) });
    if (r.status !== 201) throw await registryError(r, `PUT manifest ${reference}`);
    await r.body?.cancel();
    this.bytesSent += bytes.length;
    return { digest: sha256Digest(bytes), subjectKept: r.headers.get('oci-subject') !== null };
  }

  /**
   * The referrers API (`GET /v2/<repo>/referrers/<digest>`): the index of manifests whose subject
   * is digest, or null when the registry does not implement it (404/405/400 on that route).
   */
  async referrers(repo: string, digest: string): Promise<Buffer | null> {
    const r = await this.request('GET', `/v2/${repo}/referrers/${digest}`, { repo, actions: 'pull', headers: { accept: MEDIA.layoutIndex } });
    if (r.status === 404 || r.status === 405 || r.status === 400) {
      await r.body?.cancel();
      return null;
    }
    if (r.status !== 200) throw await registryError(r, `GET referrers of ${digest}`);
    const bytes = await readCapped(r, OCI_LIMITS.maxManifestBytes, `referrers of ${digest}`);
    this.bytesReceived += bytes.length;
    return bytes;
  }

  /** A small blob read whole (size-capped, digest verified): signatures, configs. */
  async smallBlob(repo: string, digest: string, cap: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    for await (const c of this.blob(repo, digest)) {
      n += c.length;
      if (n > cap) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `blob ${digest} is larger than ${cap} bytes`);
      parts.push(Buffer.from(c));
    }
    const bytes = Buffer.concat(parts);
    const got = sha256Digest(bytes);
    if (got !== digest) throw new ForkdError('FORKD_E_DIGEST_MISMATCH', `blob ${digest} arrived with digest ${got}`, { expected: digest, got });
    return bytes;
  }

  private location(r: Response): string {
    const loc = r.headers.get('location');
    if (!loc) throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${this.registry} answered an upload without a Location`);
    const u = new URL(loc, this.base);
    // An upload location elsewhere would send our credentials and data to another host.
    if (u.origin !== new URL(this.base).origin) throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${this.registry} sent the upload to another origin (${u.origin})`);
    return u.toString();
  }

  private async request(method: string, pathname: string, o: RequestOptions): Promise<Response> {
    const url = o.url ?? `${this.base}${pathname}`;
    const scopeKey = `repository:${o.repo}:${o.actions}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const auth = this.tokens.get(scopeKey) ?? this.basic;
      if (auth) headers.authorization = auth;
      const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: 'follow' };
      if (o.body) {
        init.body = o.body();
        if (init.body instanceof ReadableStream) init.duplex = 'half';
      }
      if (!o.streaming) init.signal = AbortSignal.timeout(this.opts.requestTimeoutMs ?? 60_000);
      let r: Response;
      try {
        r = await fetch(url, init);
      } catch (e) {
        throw new ForkdError('FORKD_E_REGISTRY_ERROR', `${method} ${this.registry}: ${(e as Error).cause ? String((e as Error & { cause: unknown }).cause) : (e as Error).message}`, { registry: this.registry }, { cause: e });
      }
      if (r.status !== 401 || attempt > 0) {
        if (r.status === 401 || r.status === 403) {
          await r.body?.cancel();
          throw new ForkdError('FORKD_E_REGISTRY_AUTH', `${this.registry} refused ${this.opts.credentials ? `the credentials of ${this.opts.credentials.username}` : 'anonymous access'} for ${scopeKey}`, { registry: this.registry, scope: scopeKey });
        }
        return r;
      }
      const challenge = parseChallenge(r.headers.get('www-authenticate'));
      await r.body?.cancel();
      if (!challenge) throw new ForkdError('FORKD_E_REGISTRY_AUTH', `${this.registry} asked for auth without a usable WWW-Authenticate challenge`, { registry: this.registry });
      if (challenge.scheme === 'basic') {
        if (!this.opts.credentials) throw new ForkdError('FORKD_E_REGISTRY_AUTH', `${this.registry} needs a username and password (--username/--password-stdin or docker login)`, { registry: this.registry });
        this.basic = basicHeader(this.opts.credentials);
      } else {
        this.tokens.set(scopeKey, `Bearer ${await this.token(challenge.params, scopeKey)}`);
      }
    }
  }

  private async token(params: Record<string, string>, scope: string): Promise<string> {
    const realm = params.realm;
    if (!realm) throw new ForkdError('FORKD_E_REGISTRY_AUTH', `${this.registry}'s bearer challenge names no realm`);
    const u = new URL(realm);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && defaultScheme(u.host) === 'http')) {
      throw new ForkdError('FORKD_E_REGISTRY_AUTH', `${this.registry}'s token realm ${u.origin} is neither https nor loopback: credentials are not sent there`);
    }
    if (params.service) u.searchParams.set('service', params.service);
    u.searchParams.set('scope', params.scope && !params.scope.includes(',') ? mergeScope(params.scope, scope) : scope);
    const headers: Record<string, string> = {};
    if (this.opts.credentials) headers.authorization = basicHeader(this.opts.credentials);
    let r: Response;
    try {
      r = await fetch(u, { headers, signal: AbortSignal.timeout(this.opts.requestTimeoutMs ?? 60_000) });
    } catch (e) {
      throw new ForkdError('FORKD_E_REGISTRY_AUTH', `token endpoint ${u.origin} unreachable: ${(e as Error).message}`);
    }
    if (r.status !== 200) {
      await r.body?.cancel();
      throw new ForkdError('FORKD_E_REGISTRY_AUTH', `token endpoint ${u.origin} refused ${this.opts.credentials ? this.opts.credentials.username : 'anonymous'} (${r.status})`, { status: r.status });
    }
    const body = JSON.parse((await readCapped(r, 1024 * 1024, 'token response')).toString('utf8')) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) throw new ForkdError('FORKD_E_REGISTRY_AUTH', `token endpoint ${u.origin} answered without a token`);
    return token;
  }
}

/** A challenge's own scope wins for its repository; we still ask for the actions we need. */
function mergeScope(challenged: string, ours: string): string {
  return challenged.split(':').slice(0, 2).join(':') === ours.split(':').slice(0, 2).join(':') ? ours : challenged;
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.toString();
}

function fileBody(file: string, start: number, endExclusive: number): ReadableStream {
  return Readable.toWeb(endExclusive > start ? createReadStream(file, { start, end: endExclusive - 1 }) : Readable.from([])) as unknown as ReadableStream;
}

async function readCapped(r: Response, cap: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  if (r.body) {
    for await (const c of r.body as unknown as AsyncIterable<Uint8Array>) {
      n += c.length;
      if (n > cap) throw new ForkdError('FORKD_E_ARTIFACT_TOO_LARGE', `${what} is larger than ${cap} bytes`);
      parts.push(Buffer.from(c));
    }
  }
  return Buffer.concat(parts);
}

async function registryError(r: Response, what: string): Promise<ForkdError> {
  let detail = '';
  try {
    const body = (await readCapped(r, 64 * 1024, 'error body')).toString('utf8');
    const j = JSON.parse(body) as { errors?: Array<{ code?: string; message?: string }> };
    detail = (j.errors ?? []).map((e) => `${e.code ?? ''} ${e.message ?? ''}`.trim()).join('; ');
  } catch {
    // not JSON: the status says enough
  }
  return new ForkdError('FORKD_E_REGISTRY_ERROR', `registry refused ${what}: ${r.status}${detail ? ` (${detail.slice(0, 300)})` : ''}`, { status: r.status });
}



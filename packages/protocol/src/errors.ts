/**
 * One error class for the whole system. The code is stable (clients match on it);
 * the HTTP status is derived from the code so REST, SDKs, CLI and MCP agree.
 */
export const ERROR_CODES = {
  FORKD_E_INVALID_ARGUMENT: 400,
  FORKD_E_INVALID_TAG: 400,
  FORKD_E_OUT_OF_RANGE: 400,
  FORKD_E_RECIPE_INVALID: 400,
  FORKD_E_MEMORY_TOO_SMALL: 400,
  FORKD_E_COMMAND_FAILED: 400,
  FORKD_E_HOST_NOT_ALLOWED: 400,
  /** The token file is readable or writable by others, or not owned by the daemon's user. */
  FORKD_E_TOKEN_FILE_INSECURE: 400,
  FORKD_E_UNAUTHORIZED: 401,
  /** Authenticated, but the token's scope does not allow this (read-only writing, user on an admin route). */
  FORKD_E_FORBIDDEN: 403,
  /** A guest called forkd.fork() in a sandbox not created with allow_guest_fork. */
  FORKD_E_GUEST_FORK_DENIED: 403,
  /** A guest's fork asked for more children or a deeper lineage than its allow_guest_fork permits. */
  FORKD_E_GUEST_FORK_LIMIT: 403,
  FORKD_E_NOT_FOUND: 404,
  FORKD_E_SNAPSHOT_NOT_FOUND: 404,
  FORKD_E_SANDBOX_NOT_FOUND: 404,
  FORKD_E_RECIPE_NOT_FOUND: 404,
  FORKD_E_FILE_NOT_FOUND: 404,
  FORKD_E_WORKSPACE_NOT_FOUND: 404,
  FORKD_E_JOB_NOT_FOUND: 404,
  FORKD_E_CONFLICT: 409,
  FORKD_E_SNAPSHOT_EXISTS: 409,
  FORKD_E_SNAPSHOT_INCOMPATIBLE: 409,
  FORKD_E_SANDBOX_NOT_RUNNING: 409,
  FORKD_E_WORKSPACE_EXISTS: 409,
  FORKD_E_HAS_DEPENDENTS: 409,
  FORKD_E_IN_USE: 409,
  FORKD_E_PAYLOAD_TOO_LARGE: 413,
  /**
   * Snapshot artifacts (OCI registries, packs): each way a hostile or damaged artifact is refused
   * has its own code. Nothing of a refused artifact is left in the store.
   */
  FORKD_E_ARTIFACT_INVALID: 400,
  FORKD_E_ARTIFACT_UNSAFE_PATH: 400,
  FORKD_E_ARTIFACT_ENTRY_TYPE: 400,
  FORKD_E_ARTIFACT_DUPLICATE: 400,
  FORKD_E_ARTIFACT_TRUNCATED: 400,
  FORKD_E_DIGEST_MISMATCH: 400,
  FORKD_E_ARTIFACT_TOO_LARGE: 413,
  FORKD_E_ARTIFACT_RATIO: 413,
  /** The trust policy requires a signature and the artifact has none. */
  FORKD_E_SIGNATURE_MISSING: 403,
  /** The trust policy requires a key's signature and none present verifies with it (wrong key, tampered). */
  FORKD_E_SIGNATURE_INVALID: 403,
  /** The trust policy file is unreadable or malformed (an operator's configuration error). */
  FORKD_E_TRUST_POLICY_INVALID: 500,
  /** A registry refused the credentials (or gave none that work). */
  FORKD_E_REGISTRY_AUTH: 502,
  /** A registry answered with an error or something that is not the distribution API. */
  FORKD_E_REGISTRY_ERROR: 502,
  /** The registry has no such repository, tag or digest. */
  FORKD_E_REF_NOT_FOUND: 404,
  FORKD_E_RATE_LIMITED: 429,
  /** The guest reads its agent channel slower than calls arrive: the call was not sent; retry shortly. */
  FORKD_E_AGENT_BACKPRESSURE: 429,
  FORKD_E_INTERNAL: 500,
  FORKD_E_NOT_IMPLEMENTED: 501,
  FORKD_E_KERNEL_NOT_FOUND: 503,
  FORKD_E_QEMU_NOT_INSTALLED: 503,
  FORKD_E_TOOL_MISSING: 503,
  FORKD_E_ACCEL_UNAVAILABLE: 503,
  FORKD_E_UNAVAILABLE: 503,
  FORKD_E_CAPACITY: 503,
  /** A per-sandbox limit was asked for but this host cannot enforce it (no cgroup controller, no write access): the spawn fails rather than run unlimited. */
  FORKD_E_QUOTA_UNAVAILABLE: 503,
  FORKD_E_JAIL_UNAVAILABLE: 503,
  FORKD_E_RUN_DIR_UNSAFE: 503,
  FORKD_E_INSUFFICIENT_STORAGE: 507,
  FORKD_E_TOOL_FAILED: 500,
  FORKD_E_IMAGE_BUILD_FAILED: 500,
  FORKD_E_VM_START_FAILED: 500,
  FORKD_E_RESTORE_FAILED: 500,
  FORKD_E_SNAPSHOT_FAILED: 500,
  /** A recipe service did not pass its ready check within its timeout (its own output is in details). */
  FORKD_E_SERVICE_NOT_READY: 500,
  /** A recipe service exited (or could not start) before it was ready (its exit status and output are in details). */
  FORKD_E_SERVICE_EXITED: 500,
  FORKD_E_AGENT_UNAVAILABLE: 502,
  FORKD_E_AGENT_PROTOCOL: 502,
  FORKD_E_AGENT_ERROR: 502,
  FORKD_E_AGENT_TIMEOUT: 504,
  FORKD_E_TIMEOUT: 504,
} as const;

export type ForkdErrorCode = keyof typeof ERROR_CODES;

export function isForkdErrorCode(code: unknown): code is ForkdErrorCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

export interface ForkdErrorBody {
  code: ForkdErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export class ForkdError extends Error {
  readonly code: ForkdErrorCode;
  readonly details?: Record<string, unknown>;

  constructor(code: ForkdErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ForkdError';
    this.code = code;
    if (details !== undefined) this.details = details;
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): ForkdErrorBody {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }

  static fromBody(body: unknown, fallback: ForkdErrorCode = 'FORKD_E_INTERNAL'): ForkdError {
    if (body && typeof body === 'object') {
      const b = body as { code?: unknown; message?: unknown; details?: unknown };
      const code = isForkdErrorCode(b.code) ? b.code : fallback;
      const message = typeof b.message === 'string' ? b.message : 'unknown error';
      const details = b.details && typeof b.details === 'object' ? (b.details as Record<string, unknown>) : undefined;
      return new ForkdError(code, message, details);
    }
    return new ForkdError(fallback, String(body));
  }
}

/** Wraps anything thrown into a ForkdError, keeping ForkdErrors as they are. */
export function toForkdError(err: unknown, fallback: ForkdErrorCode = 'FORKD_E_INTERNAL'): ForkdError {
  if (err instanceof ForkdError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new ForkdError(fallback, message, undefined, { cause: err });
}

/**
 * Sandbox descriptions in E2B's camelCase, and Sandbox.list()'s paginator. E2B's list pages
 * through its API; the daemon answers every live sandbox in one response, so the paginator fetches
 * once and hands out pages of `limit` (default: all of them in one page).
 */
import type { SandboxInfo as WireSandboxInfo, WorkspaceInfo } from './controller.js';
import { errorFor } from './errors.js';

/**
 * E2B's SandboxInfo (named SandboxDetails here: `SandboxInfo` is the Controller's wire type).
 * templateId is the snapshot tag; endAt is null when the sandbox has no timeout.
 */
export interface SandboxDetails {
  sandboxId: string;
  templateId: string;
  metadata: Record<string, string>;
  startedAt: Date;
  endAt: Date | null;
  /** 'paused': saved by pause(), resumed by Sandbox.connect(sandboxId). */
  state: 'running' | 'killed' | 'paused';
  language: 'python' | 'js' | 'browser';
  /** forkd: why it ended ('oom': killed by its memory limit), null while running. */
  endReason: 'oom' | 'exited' | null;
  /** forkd: its memory limit (MiB), null for none. */
  memoryLimitMib: number | null;
  /** forkd: the identity that made it (from the daemon's token file; "local" without one). */
  owner: string;
}

export function toDetails(s: WireSandboxInfo): SandboxDetails {
  return {
    sandboxId: s.id,
    templateId: s.snapshot_tag,
    metadata: s.metadata,
    startedAt: new Date(s.created_at_unix * 1000),
    endAt: s.expires_at_unix_ms === null ? null : new Date(s.expires_at_unix_ms),
    state: s.status,
    language: s.language,
    endReason: s.end_reason,
    memoryLimitMib: s.memory_limit_mib,
    owner: s.owner,
  };
}

/** A paused sandbox (a suspended workspace): templateId is the snapshot it was first created from. */
export function pausedDetails(w: WorkspaceInfo, language: 'python' | 'js' | 'browser'): SandboxDetails {
  return {
    sandboxId: w.sandbox_id,
    templateId: w.snapshot_tag,
    metadata: w.metadata,
    startedAt: new Date(w.created_at_unix * 1000),
    endAt: null,
    state: 'paused',
    language,
    endReason: null,
    memoryLimitMib: null,
    owner: w.owner,
  };
}

/** True when every key=value of `want` is in the sandbox's metadata. */
export function matchesMetadata(have: Record<string, string>, want: Record<string, string> | undefined): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => have[k] === v);
}

/**
 * E2B's SandboxPaginator: `hasNext` and `nextItems()`. For an array of everything:
 * `await Sandbox.list().toArray()`, or `for await (const s of Sandbox.list())`.
 */
export class SandboxPaginator implements AsyncIterable<SandboxDetails> {
  private items: SandboxDetails[] | null = null;
  private pos = 0;

  constructor(private readonly fetchAll: () => Promise<SandboxDetails[]>, private readonly limit?: number) {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw errorFor('FORKD_E_INVALID_ARGUMENT', `limit must be a positive integer (got ${limit})`);
  }

  /** True until the last page has been handed out. */
  get hasNext(): boolean {
    return this.items === null || this.pos < this.items.length;
  }

  /** E2B's cursor: here the offset of the next page, or undefined when there is none. */
  get nextToken(): string | undefined {
    return this.hasNext ? String(this.pos) : undefined;
  }

  async nextItems(): Promise<SandboxDetails[]> {
    if (!this.hasNext) throw errorFor('FORKD_E_OUT_OF_RANGE', 'no more sandboxes to list (hasNext is false)');
    this.items ??= await this.fetchAll();
    const page = this.items.slice(this.pos, this.pos + (this.limit ?? this.items.length));
    this.pos += page.length;
    if (page.length === 0) this.pos = this.items.length;
    return page;
  }

  /** Every remaining sandbox as one array. */
  async toArray(): Promise<SandboxDetails[]> {
    const all: SandboxDetails[] = [];
    while (this.hasNext) all.push(...(await this.nextItems()));
    return all;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SandboxDetails> {
    while (this.hasNext) yield* await this.nextItems();
  }
}

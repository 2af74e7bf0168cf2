import { Daemon, HTTP_LIMITS, ON_STOP, type DaemonOptions, type OnStop } from '@forkd/daemon';
import { ForkdError, assertValidTag } from '@forkd/protocol';
import type { AccelRequest } from '@forkd/engine';
import { parseIntStrict } from '../output.js';
import { EVENT_KINDS, QUOTA_FIELDS, QuotaFields, type QuotaField } from '@forkd/api';

/** `--default-memory-limit-mib` / `--max-memory-limit-mib` ... one pair per quota field of the spawn body. */
export const QUOTA_FLAGS = QUOTA_FIELDS.map((field) => ({ field, flag: field.replaceAll('_', '-'), key: field.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) }));

function camel(prefix: 'default' | 'max', key: string): string {
  return `${prefix}${key[0]!.toUpperCase()}${key.slice(1)}`;
}

/** The operator's quota policy from the serve flags, each value checked against its field's schema. */
export function quotaPolicyFromFlags(f: Record<string, unknown>): DaemonOptions['quotas'] {
  const defaults: Partial<Record<QuotaField, number>> = {};
  const max: Partial<Record<QuotaField, number>> = {};
  for (const { field, flag, key } of QUOTA_FLAGS) {
    for (const [prefix, into] of [['default', defaults], ['max', max]] as const) {
      const raw = f[camel(prefix, key)];
      if (raw === undefined) continue;
      const parsed = QuotaFields[field].safeParse(Number(raw));
      if (!parsed.success || String(raw).trim() === '') throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--${prefix}-${flag}: ${parsed.success ? 'empty' : parsed.error.issues[0]?.message ?? 'invalid'} (got ${JSON.stringify(raw)})`);
      into[field] = parsed.data;
    }
  }
  return { defaults, max };
}

export function quotaFlagName(prefix: 'default' | 'max', flag: string): string {
  return `--${prefix}-${flag} <n>`;
}

/** Connection caps shown as the flags' defaults (declared in the daemon). */
export const SERVE_LIMITS = HTTP_LIMITS;

export interface ServeFlags {
  socket?: string;
  bind?: string;
  tokenFile?: string;
  state?: string;
  auditLog?: string;
  snapshotRoot?: string;
  keeperGraceSecs?: string;
  idleExitSecs?: string;
  maxSandboxes?: string;
  snapshotStoreMaxGib?: string;
  insecureNoToken?: boolean;
  allowHost?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxConnections?: string;
  maxConnectionsPerPeer?: string;
  onStop?: string;
  cgroupRoot?: string;
  [quotaFlag: string]: unknown;
  defaultEgress?: string;
  egressAllowPrivate?: string[];
  egressResolver?: string[];
  netPool?: string;
  uplinkNetns?: string;
  portHost?: string;
  warmPool?: string[];
  warmPoolDemandMax?: string;
  eventsRetention?: string;
  pauseIdle?: string;
  eventsMaxMib?: string;
  webhook?: string;
  webhookSecretFile?: string;
  webhookAllowRemote?: boolean;
  webhookKinds?: string;
}

/** --webhook and its companions as the daemon's option (a secret file is required with a URL). */
export function webhookFromFlags(f: Pick<ServeFlags, 'webhook' | 'webhookSecretFile' | 'webhookAllowRemote' | 'webhookKinds'>): DaemonOptions['webhook'] | undefined {
  if (!f.webhook) {
    if (f.webhookSecretFile || f.webhookAllowRemote || f.webhookKinds) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--webhook-secret-file, --webhook-allow-remote and --webhook-kinds need --webhook <url>');
    return undefined;
  }
  if (!f.webhookSecretFile) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--webhook needs --webhook-secret-file <file> (deliveries are signed with it)');
  const kinds = f.webhookKinds?.split(',').map((k) => k.trim()).filter(Boolean);
  for (const k of kinds ?? []) if (!(EVENT_KINDS as readonly string[]).includes(k)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--webhook-kinds: unknown kind ${JSON.stringify(k)} (one of ${EVENT_KINDS.join(', ')})`);
  return { url: f.webhook, secretFile: f.webhookSecretFile, ...(f.webhookAllowRemote ? { allowRemote: true } : {}), ...(kinds?.length ? { kinds } : {}) };
}

/** `90s`, `90m`, `24h`, `7d` (a bare number is seconds) as ms. */
export function parseDuration(flag: string, v: string): number {
  const m = /^(\d{1,9})(s|m|h|d)?$/.exec(v.trim());
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m?.[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  if (!m || Number(m[1]) <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${flag} must be a positive duration like 90m, 24h or 7d; got ${JSON.stringify(v)}`);
  return Number(m[1]) * unit;
}

/** `--warm-pool TAG=N` (repeatable) as sizes per tag; a tag given twice keeps the last size. */
export function warmPoolFromFlags(values: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) {
    const m = /^([^=\s]+)=(\d{1,4})$/.exec(v.trim());
    if (!m) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--warm-pool must be TAG=N (e.g. quickstart-python=8); got ${JSON.stringify(v)}`);
    assertValidTag(m[1]!);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A positive size in GiB (fractions allowed: 0.5 is 512 MiB), as bytes. */
function parseGib(flag: string, v: string): number {
  const gib = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v.trim()) || !(gib > 0)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `${flag} must be a positive number of GiB; got ${v}`);
  return Math.floor(gib * 1024 * 1024 * 1024);
}

/** Runs the daemon in the foreground until SIGTERM/SIGINT, then stops it gracefully. */
export async function serve(global: { home?: string; kernel?: string; accel: AccelRequest }, f: ServeFlags): Promise<number> {
  const opts: DaemonOptions = {
    accel: global.accel,
    ...(global.home ? { home: global.home } : {}),
    ...(global.kernel ? { kernel: global.kernel } : {}),
    ...(f.socket ? { socket: f.socket } : {}),
    ...(f.bind ? { bind: f.bind } : {}),
    ...(f.tokenFile ? { tokenFile: f.tokenFile } : {}),
    ...(f.state ? { statePath: f.state } : {}),
    ...(f.auditLog ? { auditLog: f.auditLog === 'none' ? null : f.auditLog } : {}),
    ...(f.snapshotRoot ? { snapshotRoot: f.snapshotRoot } : {}),
    ...(f.keeperGraceSecs ? { keeperGraceMs: parseIntStrict('--keeper-grace-secs', f.keeperGraceSecs) * 1000 } : {}),
    ...(f.idleExitSecs ? { idleExitMs: parseIntStrict('--idle-exit-secs', f.idleExitSecs) * 1000 } : {}),
    ...(f.maxSandboxes ? { maxSandboxes: parseIntStrict('--max-sandboxes', f.maxSandboxes) } : {}),
    ...(f.snapshotStoreMaxGib ? { snapshotStoreMaxBytes: parseGib('--snapshot-store-max-gib', f.snapshotStoreMaxGib) } : {}),
    ...(f.insecureNoToken ? { insecureNoToken: true } : {}),
    ...(f.allowHost ? { allowHosts: f.allowHost.split(',').map((h) => h.trim()).filter(Boolean) } : {}),
    ...(f.tlsCert ? { tlsCert: f.tlsCert } : {}),
    ...(f.tlsKey ? { tlsKey: f.tlsKey } : {}),
    ...(f.maxConnections ? { maxConnections: parseIntStrict('--max-connections', f.maxConnections) } : {}),
    quotas: quotaPolicyFromFlags(f),
    ...(f.cgroupRoot ? { cgroupBase: f.cgroupRoot } : {}),
    egress: { ...(f.defaultEgress ? { defaultEgress: f.defaultEgress } : {}), allowPrivate: f.egressAllowPrivate ?? [], resolvers: f.egressResolver ?? [] },
    ...(f.netPool ? { netPool: f.netPool } : {}),
    ...(f.uplinkNetns ? { uplinkNetns: f.uplinkNetns } : {}),
    ...(f.portHost ? { portHost: f.portHost } : {}),
    ...(f.warmPool?.length ? { warmPool: warmPoolFromFlags(f.warmPool) } : {}),
    ...(f.warmPoolDemandMax ? { warmPoolDemandMax: parseIntStrict('--warm-pool-demand-max', f.warmPoolDemandMax) } : {}),
    ...(f.pauseIdle && f.pauseIdle !== 'off' ? { pauseIdleMs: parseDuration('--pause-idle', f.pauseIdle) } : {}),
    ...(f.eventsRetention ? { eventsRetentionMs: parseDuration('--events-retention', f.eventsRetention) } : {}),
    ...(f.eventsMaxMib ? { eventsMaxBytes: parseIntStrict('--events-max-mib', f.eventsMaxMib) * 1024 * 1024 } : {}),
    ...(webhookFromFlags(f) ? { webhook: webhookFromFlags(f)! } : {}),
    ...(f.maxConnectionsPerPeer ? { maxConnectionsPerPeer: parseIntStrict('--max-connections-per-peer', f.maxConnectionsPerPeer) } : {}),
  };
  if (f.onStop !== undefined) {
    if (!(ON_STOP as readonly string[]).includes(f.onStop)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--on-stop must be one of ${ON_STOP.join(', ')}; got ${JSON.stringify(f.onStop)}`);
    opts.onStop = f.onStop as OnStop;
  }
  const daemon = await Daemon.start(opts);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await daemon.stop();
  return 0;
}

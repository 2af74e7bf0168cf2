/**
 * The forkd daemon: owns snapshots and live sandboxes through the engine, serves the REST API on
 * a Unix socket (default <home>/forkd.sock) and/or TCP. Start-up order matters: the state lock
 * first (`<state>.lock`, on the realpath: one daemon per state), then the keeper lease (which
 * admits one daemon per keeper too), then the journal, then re-adoption of the sandboxes the
 * journal says we own, then the listeners.
 */
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { promises as fs } from 'node:fs';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { ForkdError, toForkdError } from '@forkd/protocol';
import { Engine, socketAnswers, type AccelRequest, type KeeperVmT } from '@forkd/engine';
import { Journal } from './state/journal.js';
import { StateLock } from './state/lock.js';
import { SandboxRegistry } from './sandboxes/registry.js';
import { Jobs } from './jobs.js';
import { SnapshotWrites, storeBytes } from './snapshots/writes.js';
import { Admission, linuxHost } from './sandboxes/admission.js';
import { Workspaces } from './workspaces/registry.js';
import { SnapshotOwners } from './tenancy/snapshot-owners.js';
import { Metrics } from './metrics.js';
import { EventLog } from './events/log.js';
import { readWebhookSecret, validateWebhookConfig, WebhookDelivery } from './events/webhook.js';
import { MetricsSampler } from './sandboxes/metrics-sampler.js';
import { AuditLog } from './audit.js';
import { TokenSet } from './http/auth.js';
import { buildApp } from './app.js';
import { createTcpServer, HTTP_LIMITS, type TlsFiles } from './http/server.js';
import type { DaemonServices } from './handlers/context.js';
import { watchGuestForkSandboxes } from './handlers/fork.js';
import { NO_QUOTA_POLICY, checkPolicy, type QuotaPolicy } from './quotas/policy.js';
import { egressRequest, egressSettings, type EgressOptions } from './sandboxes/egress.js';
import { LazyEgress, uplinkedNetwork } from './sandboxes/egress-service.js';

export interface DaemonOptions {
  home?: string;
  snapshotRoot?: string;
  kernel?: string;
  accel?: AccelRequest;
  /** Journal file (default <home>/daemon/state.jsonl). */
  statePath?: string;
  /** Audit log (default <home>/daemon/audit.log; null: none). */
  auditLog?: string | null;
  tokenFile?: string;
  /** Unix socket path (default <home>/forkd.sock when no bind is given). */
  socket?: string;
  /** HOST:PORT for TCP. */
  bind?: string;
  /** Listen on TCP without a token (any address, loopback included): every local user and process gets full control. */
  insecureNoToken?: boolean;
  /** Host names TCP requests may be addressed to besides the bound address (DNS rebinding guard). */
  allowHosts?: string[];
  /** TLS on the TCP listener: PEM certificate chain and key files (both or neither). */
  tlsCert?: string;
  tlsKey?: string;
  /** Open TCP connections in total and from one peer address. */
  maxConnections?: number;
  maxConnectionsPerPeer?: number;
  /** How long VMs survive a crashed daemon, waiting to be adopted. */
  keeperGraceMs?: number;
  /** IPv4 block networked sandboxes take their unique address from (default NETWORK_DEFAULTS.pool). */
  netPool?: string;
  /** Namespace networked sandboxes reach the world through; unset: the host's root namespace. */
  uplinkNetns?: string;
  /** Address exposed ports listen on (default 127.0.0.1). */
  portHost?: string;
  maxSandboxes?: number;
  maxCallsPerSandbox?: number;
  /** Per-sandbox limits: operator defaults and maxima (wire names, e.g. memory_limit_mib). */
  quotas?: QuotaPolicy;
  /** Where the cgroup hierarchy is mounted (default /sys/fs/cgroup). */
  cgroupBase?: string;
  maxSpawnInFlight?: number;
  /** Branches captured at once (each briefly pauses a sandbox and saturates a core). */
  maxConcurrentBranches?: number;
  /** Total bytes the snapshot store may hold (a write that would pass it is a 507); unset: free disk only. */
  snapshotStoreMaxBytes?: number;
  /** Exit after this long with no sandboxes, no jobs and no requests (daemons started on demand). */
  idleExitMs?: number | null;
  /**
   * What a graceful stop (SIGTERM) does with live VMs. 'leave' (default): like a crash, the keeper
   * holds every VM for keeperGraceMs and the next daemon adopts them. 'end': workspaces are
   * suspended (their state saved), other sandboxes are killed, the keeper stops.
   */
  onStop?: OnStop;
  /** Egress policy settings: --default-egress, --egress-allow-private, --egress-resolver. */
  egress?: EgressOptions;
  /** Children kept started ahead per snapshot tag (--warm-pool TAG=N): spawns take them first. */
  warmPool?: Record<string, number>;
  /** Stop a sandbox's guest after this long without a call (--pause-idle; 0/unset: never). */
  pauseIdleMs?: number;
  /** Demand sizing: a tag's pool also refills to the children spawned from it in the last minute, at most this many (0/unset: off). */
  warmPoolDemandMax?: number;
  /** How long lifecycle events are kept (--events-retention) and the size cap of their journal (--events-max-bytes). */
  eventsRetentionMs?: number;
  eventsMaxBytes?: number;
  /** The operator's webhook (--webhook, --webhook-secret-file): every event POSTed, signed, retried. */
  webhook?: { url: string; secretFile: string; allowRemote?: boolean; kinds?: string[] };
  logger?: Logger;
}

export const ON_STOP = ['leave', 'end'] as const;
export type OnStop = (typeof ON_STOP)[number];

export function parseBind(bind: string): { host: string; port: number; loopback: boolean } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(bind.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 0 || port > 65535) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `--bind must be HOST:PORT (e.g. 127.0.0.1:8889); got ${JSON.stringify(bind)}`);
  const host = m[1] ?? m[2]!;
  const loopback = host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
  return { host, port, loopback };
}

let loggingRejections = false;

/**
 * Node ends the process on an unhandled rejection, and with it every sandbox's owner. A daemon
 * logs one (it is a bug) and keeps serving.
 */
export function logUnhandledRejections(log: Logger): void {
  if (loggingRejections) return;
  loggingRejections = true;
  process.on('unhandledRejection', (reason: unknown) => {
    log.error({ err: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, 'unhandled promise rejection (a bug): logged, the daemon keeps serving');
  });
}

export class Daemon {
  private draining = false;
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private extraServer: http.Server | null = null;
  /** Where the daemon listens: the socket path and/or the TCP URL. */
  readonly addresses: { socket: string | null; url: string | null } = { socket: null, url: null };

  private constructor(
    readonly services: DaemonServices,
    private readonly app: FastifyInstance,
    private readonly audit: AuditLog,
    private readonly opts: DaemonOptions,
  ) {}

  static async start(o: DaemonOptions = {}): Promise<Daemon> {
    // Snapshots, memory images, journal, sockets: the daemon's files (and its tools' and the keeper's) are its user's alone.
    process.umask(0o077);
    const log = o.logger ?? pino({ level: process.env.FORKD_LOG_LEVEL ?? 'info', base: { svc: 'forkd' } }, pino.destination(2));
    logUnhandledRejections(log);
    egressSettings(o.egress); // bad flags stop the daemon before anything starts
    const tokens = o.tokenFile ? await TokenSet.load(o.tokenFile) : TokenSet.none();
    const bind = o.bind ? parseBind(o.bind) : null;
    if (bind && !tokens.required && !o.insecureNoToken) {
      // Loopback included: any local user, container on the host network or DNS-rebound page could connect.
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `refusing to listen on ${o.bind} without --token-file (TCP has no owner check like the Unix socket; --insecure-no-token to allow it anyway)`);
    }
    if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--tls-cert and --tls-key go together');
    if (o.tlsCert && !bind) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', '--tls-cert needs --bind (the Unix socket is not encrypted)');
    const tls = o.tlsCert && o.tlsKey ? await readTls(o.tlsCert, o.tlsKey) : null;
    const engine = new Engine({ ...(o.cgroupBase ? { cgroupBase: o.cgroupBase } : {}), ...(o.home ? { home: o.home } : {}), ...(o.snapshotRoot ? { snapshotRoot: o.snapshotRoot } : {}), ...(o.kernel ? { kernel: o.kernel } : {}), ...(o.accel ? { accel: o.accel } : {}), network: { ...(o.netPool ? { pool: o.netPool } : {}), ...(o.uplinkNetns ? { uplinkNetns: o.uplinkNetns } : {}), ...(o.portHost ? { portHost: o.portHost } : {}) }, ...(o.warmPoolDemandMax ? { pool: { demandMax: o.warmPoolDemandMax } } : {}), ...(o.pauseIdleMs ? { idlePause: { afterMs: o.pauseIdleMs } } : {}) });
    const statePath = path.resolve(o.statePath ?? path.join(engine.layout.root, 'daemon', 'state.jsonl'));
    const socket = o.socket ?? (o.bind ? null : path.join(engine.layout.root, 'forkd.sock'));
    // A second daemon on this state (under any name for it) stops here, naming the holder's pid.
    const lock = await StateLock.acquire(statePath);
    try {
      if (socket) await claimSocket(socket);
      const attach = () => engine.attachKeeper({
        key: statePath,
        graceMs: o.keeperGraceMs ?? 60_000,
        onLost: () => {
          log.error('the VM keeper died: its sandboxes are gone; starting a new keeper');
          void attach().catch((e: unknown) => log.error({ err: String(e) }, 'could not start a new keeper'));
        },
      });
      // The keeper admits one daemon at a time as well (its socket is keyed by the state path).
      const inherited = await attach().catch((e: unknown) => {
        if (e instanceof ForkdError && e.code === 'FORKD_E_CONFLICT') throw new ForkdError('FORKD_E_CONFLICT', `another forkd daemon owns the state ${statePath}`, { state: statePath });
        throw e;
      });
      try {
        return await Daemon.assemble(o, engine, log, tokens, statePath, socket, bind ? { ...bind, tls } : null, inherited, lock);
      } catch (e) {
        // Let go of the keeper without stopping its VMs: a successful retry adopts them.
        await engine.releaseKeeper({ stopVms: false });
        throw e;
      }
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private static async assemble(o: DaemonOptions, engine: Engine, log: Logger, tokens: TokenSet, statePath: string, socket: string | null, bind: { host: string; port: number; tls: TlsFiles | null } | null, inherited: KeeperVmT[], lock: StateLock): Promise<Daemon> {
    const { journal, replay } = await Journal.open(statePath, { lock });
    if (replay.tornTail) log.warn({ state: journal.file }, 'dropped a partial last line of the journal (a crash mid-write: it was never acknowledged)');
    if (replay.badLines > 0) log.error({ state: journal.file, bad_lines: replay.badLines, kept_aside: replay.keptAside }, `skipped ${replay.badLines} corrupt journal line(s) (checksum or JSON failure): the records they held are lost; the original journal is kept at ${replay.keptAside}`);
    // The webhook is checked before anything starts: a bad URL or secret file refuses to serve.
    const hookConfig = o.webhook ? { url: o.webhook.url, secret: await readWebhookSecret(o.webhook.secretFile), ...(o.webhook.allowRemote ? { allowRemote: true } : {}), ...(o.webhook.kinds ? { kinds: o.webhook.kinds } : {}) } : null;
    if (hookConfig) validateWebhookConfig(hookConfig);
    const { log: events, badLines: badEvents } = await EventLog.open(eventsDir(statePath), { ...(o.eventsRetentionMs ? { retentionMs: o.eventsRetentionMs } : {}), ...(o.eventsMaxBytes ? { maxBytes: o.eventsMaxBytes } : {}) });
    events.onError = (e: unknown) => log.error({ err: toForkdError(e).message }, 'an event could not be journaled (it is lost)');
    if (badEvents > 0) log.warn({ dir: events.dir, bad_lines: badEvents }, 'skipped corrupt event journal lines');
    const jobs = new Jobs(journal);
    let registry: SandboxRegistry | null = null;
    const metrics = new Metrics({
      sandboxes: () => registry?.count ?? 0,
      pool: () => engine.pool.state(),
      snapshots: async () => (await engine.listSnapshots()).length,
      jobsRunning: () => jobs.active.length,
    });
    const admission = new Admission({
      limits: { maxSandboxes: o.maxSandboxes ?? 256, maxSpawnInFlight: o.maxSpawnInFlight ?? 128, maxConcurrentCaptures: o.maxConcurrentBranches ?? 2, storeMaxBytes: o.snapshotStoreMaxBytes ?? null },
      host: linuxHost,
      storeDir: engine.layout.snapshots,
      storeBytes: () => storeBytes(engine),
      // Pooled children are VMs too: they count against max-sandboxes, and give way to real work.
      liveSandboxes: () => (registry?.count ?? 0) + engine.pool.size,
      reclaim: (n, tag) => engine.pool.reclaim(n, tag),
    });
    registry = new SandboxRegistry(engine, journal, metrics, log, { maxCallsPerSandbox: o.maxCallsPerSandbox ?? 64, quotas: checkPolicy(o.quotas ?? NO_QUOTA_POLICY) }, admission);
    registry.events = events;
    const egress = egressSettings(o.egress);
    // Networked children get their egress policy from the proxy + nft service (as root only).
    const egressService = engine.networks ? new LazyEgress(engine.networks, egress, statePath) : null;
    engine.networks?.useEgress(egressService);
    const restored = await registry.restore(inherited);
    if (restored.adopted.length || restored.reaped.length) log.info(restored, 'sandboxes from the previous daemon');
    if (egressService) {
      const reg = registry;
      egress.apply = async (id, request) => void (await egressService.applyEgress(uplinkedNetwork(id, reg.get(id, null).sb.net), request));
      // The proxy's policies lived in the previous daemon's process: adopted children get theirs again.
      for (const id of restored.adopted) {
        const entry = registry.get(id, null);
        if (!entry.sb.net?.hostAddr) continue;
        await egressService.applyEgress(entry.sb.net, entry.rec.egress ? egressRequest(entry.rec.egress) : {}).catch((e: unknown) => log.error({ sandbox: id, err: String(e) }, 'could not re-apply the egress policy of an adopted sandbox (its nft rules stay; the proxy denies it until a PUT ./network)'));
      }
    }
    const owners = new SnapshotOwners(journal);
    const writes = new SnapshotWrites(engine, jobs, admission, owners);
    writes.events = events;
    const workspaces = new Workspaces(engine, journal, registry, writes, owners, log);
    workspaces.events = events;
    await workspaces.reconcile();
    registry.onEnded = (rec, reason) => workspaces.sandboxEnded(rec.id, reason);
    // Children the previous daemon was still making when it died: the keeper owns their dirs but holds no QEMU.
    const unheld = await engine.sweepUnheldKeeperDirs().catch((e: unknown) => (log.warn({ err: String(e) }, 'could not remove half-made VMs of the previous daemon'), []));
    if (unheld.length) log.info({ removed: unheld }, 'removed VMs the previous daemon was still making');
    await engine.cleanup().catch((e: unknown) => log.warn({ err: String(e) }, 'cleanup of stale VM files failed'));
    engine.poolRoom = () => admission.hasRoom(1);
    engine.onIdlePauseError = (sandbox, what, err) => log.warn({ sandbox, err: toForkdError(err).message }, `idle pause: ${what} failed`);
    engine.onPoolError = (tag, err) => log.warn({ tag, err: toForkdError(err).message }, 'warm pool: could not start a child (retried in 30 s)');
    // After cleanup (it would not touch them, but nothing is started before the state is settled).
    for (const [tag, n] of Object.entries(o.warmPool ?? {})) engine.configurePool(tag, n);
    const reg = registry;
    const sampler = new MetricsSampler({
      read: async (id) => {
        const sb = reg.get(id, null).sb;
        const [guest, host] = await Promise.all([sb.guestStats({ timeoutMs: 10_000 }), sb.hostStats()]);
        return { guest, host };
      },
      live: (id) => reg.list().some((e) => e.rec.id === id),
      onError: (id, e) => log.debug({ sandbox: id, err: toForkdError(e).message }, 'metrics sample failed'),
    });
    let webhook: WebhookDelivery | undefined;
    if (hookConfig) {
      const hook = new WebhookDelivery(events, hookConfig);
      const where = new URL(hookConfig.url).origin; // never the path or query: they may carry a token
      hook.onReport = (r) => {
        metrics.webhookDeliveries.inc({ result: r.ok ? 'ok' : r.gaveUp ? 'gave_up' : 'retry' });
        if (r.gaveUp) log.error({ webhook: where, event: r.event, attempts: r.attempt, status: r.status, err: r.error }, 'webhook: gave up on an event');
        else if (!r.ok) log.warn({ webhook: where, event: r.event, attempt: r.attempt, status: r.status, err: r.error }, 'webhook: delivery failed (retried)');
      };
      hook.onSkipped = (from, to) => log.warn({ webhook: where, from, to }, 'webhook: events dropped by retention before they could be delivered');
      await hook.start();
      webhook = hook;
    }
    const services: DaemonServices = { engine, journal, sandboxes: registry, jobs, metrics, log, writes, admission, workspaces, egress, owners, events, sampler, ...(webhook ? { webhook } : {}), ...(egressService ? { egressService } : {}) };
    watchGuestForkSandboxes(services);

    const audit = new AuditLog(o.auditLog === null ? null : path.resolve(o.auditLog ?? path.join(engine.layout.root, 'daemon', 'audit.log')));
    let daemon: Daemon | null = null;
    const app = await buildApp({
      services,
      tokens,
      audit,
      isDraining: () => daemon?.draining ?? false,
      hostNames: new Set([...(bind && !['0.0.0.0', '::'].includes(bind.host) ? [bind.host] : []), ...(o.allowHosts ?? [])].map((h) => h.toLowerCase())),
      onActivity: () => {
        if (daemon) daemon.lastActivity = Date.now();
      },
    });
    daemon = new Daemon(services, app, audit, o);
    try {
      if (socket) {
        await listenSocket(app, socket);
        daemon.addresses.socket = socket;
      }
      if (bind) {
        // Fastify listens on the socket; TCP gets its own server (caps, TLS) feeding the same router.
        const caps = { maxConnections: o.maxConnections ?? HTTP_LIMITS.maxConnections, maxConnectionsPerPeer: o.maxConnectionsPerPeer ?? HTTP_LIMITS.maxConnectionsPerPeer };
        const extra = createTcpServer((req, res) => app.routing(req, res), caps, bind.tls);
        daemon.extraServer = extra;
        await new Promise<void>((resolve, reject) => {
          extra.once('error', reject);
          extra.listen(bind.port, bind.host, () => resolve());
        });
        const a = extra.address() as net.AddressInfo;
        daemon.addresses.url = `${bind.tls ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
      }
    } catch (e) {
      // Not serving after all: close what we opened but leave the sandboxes to the keeper.
      daemon.extraServer?.close();
      await app.close();
      await webhook?.stop();
      await events.close();
      await journal.close();
      await audit.close();
      throw e;
    }
    if (o.idleExitMs) daemon.armIdleExit(o.idleExitMs);
    log.info({ socket: daemon.addresses.socket, url: daemon.addresses.url, state: statePath, auth: tokens.required }, 'forkd daemon listening');
    return daemon;
  }

  private armIdleExit(idleMs: number): void {
    this.idleTimer = setInterval(() => {
      const s = this.services;
      if (s.sandboxes.count === 0 && s.jobs.active.length === 0 && Date.now() - this.lastActivity > idleMs) {
        s.log.info({ idle_ms: idleMs }, 'idle: exiting');
        void this.stop().then(() => process.exit(0), (e: unknown) => {
          s.log.error({ err: String(e) }, 'idle exit: the stop failed');
          process.exit(1);
        });
      }
    }, Math.min(idleMs, 30_000));
    this.idleTimer.unref();
  }

  /**
   * Graceful stop: refuse new requests, let in-flight ones finish (30 s), then per onStop either
   * leave the VMs to the keeper (the next daemon adopts them, as after a crash) or suspend the
   * workspaces, kill the other sandboxes and stop the keeper.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.draining = true;
      if (this.idleTimer) clearInterval(this.idleTimer);
      const s = this.services;
      this.extraServer?.close();
      this.extraServer?.closeAllConnections();
      s.events.endStreams(); // open event streams would hold the server open
      const closed = this.app.close();
      const deadline = new Promise((r) => setTimeout(r, 30_000).unref());
      await Promise.race([closed, deadline]);
      await s.engine.pool.close(); // pooled children wait for nobody: never left to the keeper
      if ((this.opts.onStop ?? 'leave') === 'end') {
        await s.workspaces.suspendAll();
        await s.sandboxes.killAll('shutdown');
        await s.engine.releaseKeeper({ stopVms: true }).catch(() => undefined);
      } else {
        s.log.info({ sandboxes: s.sandboxes.count }, 'leaving the live VMs to the keeper for the next daemon');
        await s.engine.releaseKeeper({ stopVms: false });
      }
      // No spawn can race this now; a root still holding a VM's cgroup (left to the keeper) stays.
      await s.engine.removeCgroupRoot().catch((e: unknown) => s.log.warn({ err: String(e) }, 'could not remove the root cgroup'));
      await s.egressService?.stop().catch(() => undefined);
      s.sampler.stop();
      await s.webhook?.stop(); // pending deliveries stay journaled (the cursor) for the next start
      await s.events.close();
      await s.journal.close();
      await this.audit.close();
      if (this.addresses.socket) await fs.rm(this.addresses.socket, { force: true });
      s.log.info('forkd daemon stopped');
    })();
    return this.stopping;
  }
}

/** The event journal's directory, beside the state journal (state.jsonl -> state-events/). */
export function eventsDir(statePath: string): string {
  return path.join(path.dirname(statePath), `${path.basename(statePath).replace(/\.jsonl$/, '')}-events`);
}

async function readTls(certFile: string, keyFile: string): Promise<TlsFiles> {
  const read = async (f: string, what: string) => fs.readFile(f).catch((e: unknown) => {
    throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `cannot read ${what} ${f}: ${(e as Error).message}`);
  });
  return { cert: await read(certFile, '--tls-cert'), key: await read(keyFile, '--tls-key') };
}

/** A socket path is ours if nobody answers on it (a stale file from a crash is replaced). */
async function claimSocket(socket: string): Promise<void> {
  if (Buffer.byteLength(socket) > 107) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `socket path ${socket} is too long for a Unix socket (max 107 bytes)`);
  if (await socketAnswers(socket)) throw new ForkdError('FORKD_E_CONFLICT', `a forkd daemon already listens on ${socket}`, { socket });
  await fs.mkdir(path.dirname(socket), { recursive: true, mode: 0o700 });
  await fs.rm(socket, { force: true });
}

/** The socket is the credential on a local machine: owner only (created under umask 077, then chmod; no umask change across an await). */
async function listenSocket(app: FastifyInstance, socket: string): Promise<void> {
  await app.listen({ path: socket });
  await fs.chmod(socket, 0o600);
}

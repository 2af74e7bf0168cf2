/** Sandboxes: spawn, list, get, kill, timeout, ping, exec (collected or streamed), eval. */
import { StringDecoder } from 'node:string_decoder';
import { ForkdError, toForkdError } from '@forkd/protocol';
import type { Handlers } from '../http/register.js';
import type { DaemonServices } from './context.js';
import { StreamBacklog } from './stream-backlog.js';
import { evalView, execRequest, execView, runCodeView, sandboxInfo } from './views.js';
import { quotasOf } from '../quotas/policy.js';
import { childVariants } from './fork.js';
import { egressRecord, egressRequest } from '../sandboxes/egress.js';

/** Total bytes one streamed exec may produce through the API. */
const MAX_STREAM_BYTES = 256 * 1024 * 1024;

type SandboxRoutes = 'spawn' | 'updateNetwork' | 'listSandboxes' | 'getSandbox' | 'killSandbox' | 'setTimeout' | 'exposePort' | 'ping' | 'exec' | 'eval' | 'runCode';

export function sandboxHandlers(s: DaemonServices, backlog = new StreamBacklog()): Pick<Handlers, SandboxRoutes> {
  return {
    async spawn({ body, caller }) {
      s.writes.assertNotWriting(body.snapshot_tag, caller);
      s.owners.assertVisible(caller, await s.engine.getSnapshot(body.snapshot_tag));
      const egress = egressRecord(body, s.egress.defaultEgress);
      const variants = body.vary !== undefined || body.seeds !== undefined ? childVariants(body.n, body.vary, body.seeds, { watch: Boolean(body.allow_guest_fork) }) : null;
      const entries = await s.sandboxes.spawn({
        tag: body.snapshot_tag,
        owner: caller.identity,
        n: body.n,
        ...(body.timeout_ms !== undefined ? { timeoutMs: body.timeout_ms } : {}),
        ...(body.metadata ? { metadata: body.metadata } : {}),
        ...(body.envs ? { envs: body.envs } : {}),
        quotas: quotasOf(body),
        ...(egress ? { egress } : {}),
        ...(body.network || body.per_child_netns ? { network: true } : {}),
        ...(body.allow_guest_fork ? { guestFork: { ...body.allow_guest_fork, depth: 0 } } : {}),
        ...(variants ? { variants } : {}),
      });
      return { status: 201, body: entries.map(sandboxInfo) };
    },
    async updateNetwork({ params, body, caller }) {
      const entry = s.sandboxes.get(params.id, caller);
      const egress = egressRecord(body, s.egress.defaultEgress) ?? egressRecord({ allow_out: [] }, s.egress.defaultEgress)!;
      if (!s.egress.apply) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${params.id} has no network: an egress policy applies to sandboxes spawned with network`);
      await s.egress.apply(entry.rec.id, egressRequest(egress));
      await s.sandboxes.update(entry, { egress });
      return { status: 200, body: sandboxInfo(entry) };
    },
    async listSandboxes({ query, caller }) {
      let meta: [string, string] | undefined;
      if (query.metadata !== undefined) {
        const i = query.metadata.indexOf('=');
        if (i <= 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', 'metadata filter must be key=value');
        meta = [query.metadata.slice(0, i), query.metadata.slice(i + 1)];
      }
      return { status: 200, body: s.sandboxes.list({ visibleTo: caller, ...(query.tag ? { tag: query.tag } : {}), ...(meta ? { metadata: meta } : {}) }).map(sandboxInfo) };
    },
    async getSandbox({ params, caller }) {
      return { status: 200, body: sandboxInfo(s.sandboxes.describe(params.id, caller)) };
    },
    async killSandbox({ params, caller }) {
      await s.sandboxes.kill(params.id, caller);
      return { status: 204 };
    },
    async setTimeout({ params, body, caller }) {
      return { status: 200, body: sandboxInfo(await s.sandboxes.setTimeout(params.id, caller, body.timeout_ms)) };
    },
    async exposePort({ params, body, caller }) {
      const e = await s.sandboxes.withSandbox(params.id, caller, 'exposePort', (sb) => sb.exposePort(body.port));
      return { status: 200, body: { host: e.host, port: e.port, guest_port: body.port } };
    },
    async ping({ params, signal, caller }) {
      const r = await s.sandboxes.withSandbox(params.id, caller, 'ping', (sb) => sb.ping({ timeoutMs: 10_000, signal }));
      return { status: 200, body: { pong: true, warmup_ready: r.warmup === 'warm', agent_version: r.agent_version, uptime_ms: r.uptime_ms, languages: r.languages } };
    },
    async exec({ params, body, reply, signal, caller }) {
      const request = execRequest(body);
      const stdin = body.stdin !== undefined ? Buffer.from(body.stdin, 'utf8') : undefined;
      if (!body.stream) {
        const r = await s.sandboxes.withSandbox(params.id, caller, 'exec', (sb) => sb.commands.exec(request, { signal, ...(stdin ? { stdin } : {}) }));
        return { status: 200, body: execView(r) };
      }
      // NDJSON: headers go out once the call is accepted; errors after that become an error line.
      const out = reply.raw;
      const ac = new AbortController();
      signal.addEventListener('abort', () => ac.abort(signal.reason), { once: true });
      let started = false;
      // A client too slow for its share of the stream budget: end the call (its slot comes back)
      // and close the connection, which frees what was waiting for it.
      const held = backlog.track(() => out.writableLength, (reason) => {
        ac.abort(new ForkdError('FORKD_E_PAYLOAD_TOO_LARGE', reason));
        out.destroy();
      });
      out.on('drain', () => held.drained());
      out.once('close', () => held.release());
      const line = (v: unknown): void => {
        if (!started) {
          started = true;
          out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        }
        if (out.destroyed) return;
        const text = `${JSON.stringify(v)}\n`;
        out.write(text);
        held.update(text.length);
      };
      reply.hijack();
      // Chunks end at arbitrary bytes: a decoder per stream keeps a split UTF-8 character whole.
      const dec = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') };
      const chunk = (type: 'stdout' | 'stderr', data: string): void => {
        if (data) line({ type, data });
      };
      try {
        const r = await s.sandboxes.withSandbox(params.id, caller, 'exec', (sb) => sb.commands.exec(request, {
          signal: ac.signal,
          maxStreamBytes: MAX_STREAM_BYTES,
          ...(stdin ? { stdin } : {}),
          onStdout: (d) => chunk('stdout', dec.stdout.write(d)),
          onStderr: (d) => chunk('stderr', dec.stderr.write(d)),
        }));
        chunk('stdout', dec.stdout.end());
        chunk('stderr', dec.stderr.end());
        line({ type: 'exit', exit_code: r.exit_code, signal: r.signal, error: r.error, timed_out: r.timed_out, duration_ms: r.duration_ms });
      } catch (e) {
        const fe = toForkdError(e);
        if (!started) {
          out.writeHead(fe.status, { 'content-type': 'application/json' });
          out.end(JSON.stringify({ error: fe.toJSON() }));
          return 'sent';
        }
        line({ type: 'error', error: { code: fe.code, message: fe.message } });
      }
      if (!started) line({ type: 'exit', exit_code: null, signal: null, error: 'no output', timed_out: false, duration_ms: 0 });
      if (!out.destroyed) out.end();
      return 'sent';
    },
    async eval({ params, body, signal, caller }) {
      const r = await s.sandboxes.withSandbox(params.id, caller, 'eval', (sb) => sb.eval(body.language ?? sb.language, body.code, { timeoutMs: Math.round(body.timeout_secs * 1000), signal }));
      return { status: 200, body: evalView(r) };
    },
    async runCode({ params, body, signal, caller }) {
      const r = await s.sandboxes.withSandbox(params.id, caller, 'runCode', (sb) => sb.runCode(body.code, { timeoutMs: Math.round(body.timeout_secs * 1000), signal }));
      return { status: 200, body: runCodeView(r) };
    },
  };
}

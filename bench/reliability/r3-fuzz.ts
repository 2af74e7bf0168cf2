/**
 * R3: random requests over every route of the route table (fast-check, seeded), with valid and
 * invalid tokens and bodies, against a daemon on TCP with a token and real sandboxes. Counts
 * the answers by status; every 5xx is printed with its request so it can be reproduced.
 */
import http from 'node:http';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { Controller } from '@forkd/sdk';
import { startTestDaemon } from '@forkd/daemon/testing';
import { benchRunDir, heapMiB, rssMiB, type Scenario } from './common.js';
import { requestArbitrary, type FuzzRequest } from './route-arbitraries.js';

const CONCURRENCY = 8;
const TIMEOUT_MS = 30_000;

interface Answer {
  status: number | 'timeout' | 'error';
  text: string;
  ms: number;
}

function send(url: URL, token: string, r: FuzzRequest): Promise<Answer> {
  const headers: Record<string, string> = { host: url.host, ...r.headers };
  if (r.token === 'valid') headers.authorization = `Bearer ${token}`;
  else if (r.token === 'wrong') headers.authorization = `Bearer ${crypto.randomBytes(24).toString('hex')}`;
  else if (r.token === 'malformed') headers.authorization = 'Basic Zm9ya2Q6Zm9ya2Q=';
  if (r.body) headers['content-length'] = String(r.body.length);
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ agent: false, hostname: url.hostname, port: url.port, method: r.method, path: r.path, headers }, (res) => {
      const parts: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < 4096) parts.push(c);
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8').slice(0, 400), ms: performance.now() - t0 }));
      res.on('error', (e) => resolve({ status: 'error', text: e.message, ms: performance.now() - t0 }));
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: e.message === 'timeout' ? 'timeout' : 'error', text: e.message, ms: performance.now() - t0 }));
    req.end(r.body ?? undefined);
  });
}

export const r3: Scenario = {
  id: 'R3',
  title: 'random requests over every route (fast-check)',
  vm: true,
  async run(o, out) {
    benchRunDir();
    const seed = Number(process.env.R3_SEED ?? Date.now() % 2 ** 31);
    const d = await startTestDaemon({ tcp: true, token: true, keeperGraceSecs: 5 });
    const c = new Controller({ socketPath: d.socketPath, token: d.token! });
    const pid = d.proc.pid!;
    try {
      const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 2, timeout_ms: 3_600_000 });
      const ws = await c.createWorkspace({ name: `rel-r3-${process.pid}`, snapshot_tag: d.tag });
      const targets = { sandboxIds: [...sbs.map((s) => s.id), ws.sandbox_id], tags: [d.tag], workspaces: [ws.name] };
      const reqs = fc.sample(requestArbitrary(targets), { numRuns: o.requests, seed });
      const rssBefore = rssMiB(pid);
      const heapBefore = await heapMiB(d);
      const byStatus = new Map<string, number>();
      const byRoute = new Map<string, number>();
      const bad: Array<{ r: FuzzRequest; a: Answer }> = [];
      let next = 0;
      const t0 = performance.now();
      const url = new URL(d.url!);
      await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
        while (next < reqs.length) {
          const r = reqs[next++]!;
          const a = await send(url, d.token!, r);
          const k = String(a.status);
          byStatus.set(k, (byStatus.get(k) ?? 0) + 1);
          byRoute.set(r.route, (byRoute.get(r.route) ?? 0) + 1);
          if (typeof a.status !== 'number' || a.status >= 500) bad.push({ r, a });
          if (next % 1000 === 0) process.stderr.write(`# R3 ${next}/${reqs.length}\n`);
        }
      }));
      const wallS = (performance.now() - t0) / 1000;
      const rssAfter = rssMiB(pid);
      const heapAfter = await heapMiB(d);
      const stillUp = await Promise.all(targets.sandboxIds.map((id) => c.pingSandbox(id).then(() => true, () => false)));
      const fives = bad.filter((b) => typeof b.a.status === 'number').length;
      out(`requests: ${reqs.length} (seed ${seed}, ${CONCURRENCY} at a time, ${wallS.toFixed(0)} s), over ${byRoute.size} of the route table's routes; tokens valid/wrong/none/malformed`);
      out(`answers by status: ${[...byStatus.entries()].sort().map(([s, n]) => `${s}: ${n}`).join(', ')}`);
      out('');
      out('| figure | value | target |');
      out('|---|---|---|');
      out(`| 5xx answers | ${fives} | 0 |`);
      out(`| no answer in ${TIMEOUT_MS / 1000} s / connection errors | ${bad.filter((b) => b.a.status === 'timeout').length} / ${bad.filter((b) => b.a.status === 'error').length} | 0 / 0 |`);
      out(`| daemon RSS before / after | ${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MiB | bounded |`);
      out(`| daemon heap used before / after | ${heapBefore.toFixed(0)} / ${heapAfter.toFixed(0)} MiB | bounded |`);
      out(`| target sandboxes still answering ping | ${stillUp.filter(Boolean).length}/${stillUp.length} | all |`);
      for (const { r, a } of bad.slice(0, 20)) out(`  ${a.status} ${r.method} ${r.path} token=${r.token} ct=${r.headers['content-type'] ?? '-'} body=${r.bodyText.slice(0, 200)} -> ${a.text.slice(0, 300)}`);
      if (bad.length > 20) out(`  ... and ${bad.length - 20} more`);
      await c.deleteWorkspace(ws.name).catch(() => undefined);
    } finally {
      await d.stop();
    }
  },
};

/**
 * R5: hostile clients. The unauthenticated part is bench:clients (reliability/clients.ts, no VM);
 * then 100 downloads aborted after their first bytes against a real sandbox, and an authenticated
 * ping on that sandbox, which must still be answered (64 aborted downloads used to wedge it).
 */
import http from 'node:http';
import { startTestDaemon } from '@forkd/daemon/testing';
import { raw } from '../../packages/daemon/src/testing/http.js';
import { hostileClients } from './clients.js';
import { benchRunDir, heapMiB, rssMiB, sleep, type Scenario } from './common.js';

const ABORTS = 100;
const BATCH = 10;
const FILE_BYTES = 8 * 1024 * 1024;

export const r5: Scenario = {
  id: 'R5',
  title: 'hostile clients: slow unauthenticated connections, aborted downloads',
  vm: true,
  async run(o, out) {
    benchRunDir();
    const opts = o.quick ? { conns: 50, bodyMib: 2, holdSecs: 2, trickleSecs: 5 } : { conns: 200, bodyMib: 2, holdSecs: 5, trickleSecs: 20 };
    out(`A/B, bench:clients' attacks (CONNS=${opts.conns} BODY_MIB=${opts.bodyMib} HOLD_SECS=${opts.holdSecs} TRICKLE_SECS=${opts.trickleSecs}):`);
    await hostileClients(opts, (s) => out(`  ${s}`));

    const d = await startTestDaemon({ tcp: true, token: true, keeperGraceSecs: 5 });
    const auth = { authorization: `Bearer ${d.token}` };
    const json = { ...auth, 'content-type': 'application/json' };
    try {
      const made = await raw(d, { method: 'POST', path: '/v1/sandboxes', body: JSON.stringify({ snapshot_tag: d.tag, n: 1 }), headers: json });
      const id = (made.json as Array<{ id: string }>)[0]!.id;
      await raw(d, { method: 'POST', path: `/v1/sandboxes/${id}/exec`, body: JSON.stringify({ cmd: `head -c ${FILE_BYTES} /dev/urandom > /tmp/big` }), headers: json });
      const url = new URL(d.url!);
      const aborted = () => new Promise<void>((resolve) => {
        const req = http.request({ agent: false, hostname: url.hostname, port: url.port, path: `/v1/sandboxes/${id}/files?path=/tmp/big`, headers: { ...auth, host: url.host } }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
          res.once('end', () => resolve());
        });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        req.end();
      });
      const rssBefore = rssMiB(d.proc.pid!);
      const heapBefore = await heapMiB(d);
      const t0 = performance.now();
      for (let i = 0; i < ABORTS; i += BATCH) await Promise.all(Array.from({ length: Math.min(BATCH, ABORTS - i) }, aborted));
      const abortMs = performance.now() - t0;
      await sleep(500);
      const tp = performance.now();
      const ping = await raw(d, { method: 'POST', path: `/v1/sandboxes/${id}/ping`, headers: auth, timeoutMs: 30_000 }).then((r) => `${r.status} in ${(performance.now() - tp).toFixed(0)} ms`, (e: Error) => `no answer (${e.message})`);
      const whole = await raw(d, { method: 'GET', path: `/v1/sandboxes/${id}/files?path=/tmp/big`, headers: auth });
      const rssAfter = rssMiB(d.proc.pid!);
      const heapAfter = await heapMiB(d);
      out('');
      out(`C, ${ABORTS} downloads of an 8 MiB file aborted after their first bytes (${BATCH} at a time, ${(abortMs / 1000).toFixed(1)} s):`);
      out('| figure | value | target |');
      out('|---|---|---|');
      out(`| authenticated ping on that sandbox afterwards | ${ping} | 200 |`);
      out(`| a whole download afterwards | ${whole.status}, ${whole.headers['x-forkd-file-size'] ?? '?'} bytes | 200, ${FILE_BYTES} |`);
      out(`| daemon RSS before / after | ${rssBefore.toFixed(0)} / ${rssAfter.toFixed(0)} MiB | bounded |`);
      out(`| daemon heap used before / after | ${heapBefore.toFixed(0)} / ${heapAfter.toFixed(0)} MiB | bounded |`);
    } finally {
      await d.stop();
    }
  },
};

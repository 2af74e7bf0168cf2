/**
 * R4: a hostile guest while another sandbox is pinged. The hostile sandbox's JS eval runs inside
 * its agent and writes straight to the agent's virtio port (as the security review's probes P1
 * and P5 do): a trickled partial frame, forged replies, a flood of unsolicited 16 MiB frames; then
 * its agent stops reading (SIGSTOP) while the host sends it uploads. Each attack comes from a
 * sandbox of its own (a trickled frame leaves its channel unusable for the rest of its life).
 * Each phase lasts 20 s (5 with --quick); the daemon's heap and external memory are sampled throughout and the calm sandbox is pinged back to back, and both
 * are set against a calm phase of the same length in the same run.
 */
import { Controller } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from '@forkd/daemon/testing';
import { raw } from '../../packages/daemon/src/testing/http.js';
import { benchRunDir, daemonMemory, rssMiB, sleep, stats, type Scenario } from './common.js';

/** Finds the agent's port fd and defines __w(buf) (writes it all, retrying on EAGAIN). */
const PRELUDE = `
const fs = require('fs');
const fd = fs.readdirSync('/proc/self/fd').map(Number).find((f) => { try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith('/dev/vport'); } catch { return false; } });
const prefix = (h, p) => { const b = Buffer.alloc(12); b.set([0x46, 0x4b, 0x44, 0x01]); b.writeUInt32BE(h, 4); b.writeUInt32BE(p, 8); return b; };
const writeAll = (buf) => { let off = 0; while (off < buf.length) { try { off += fs.writeSync(fd, buf, off); } catch (e) { if (e.code !== 'EAGAIN') throw e; } } };
`;

/** Guest programs, each armed by an eval that returns at once and acting for `secs` seconds. */
const attacks = {
  trickle: (secs: number) => `${PRELUDE}
setTimeout(() => {
  writeAll(prefix(2, 16 * 1024 * 1024 - 64));
  const end = Date.now() + ${secs * 1000}; const one = Buffer.from('x'); globalThis.__trickled = 0;
  const tick = () => { for (let i = 0; i < 2000 && Date.now() < end; i++) { try { fs.writeSync(fd, one); globalThis.__trickled++; } catch (e) { if (e.code !== 'EAGAIN') throw e; break; } } if (Date.now() < end) setTimeout(tick, 1); };
  tick();
}, 300); 'armed';`,
  forged: (secs: number) => `${PRELUDE}
const frame = (id) => { const h = Buffer.from(JSON.stringify({ kind: 'res', id, ok: false, error: { code: 'FORKD_E_UNAUTHORIZED', message: 'forged by the guest', details: { forged: true } } })); return Buffer.concat([prefix(h.length, 0), h]); };
const all = Buffer.concat(Array.from({ length: 1000 }, (_, i) => frame(i + 1)));
const end = Date.now() + ${secs * 1000}; globalThis.__forged = 0;
const tick = () => { writeAll(all); globalThis.__forged += 1000; if (Date.now() < end) setTimeout(tick, 100); };
setTimeout(tick, 300); 'armed';`,
  flood: (secs: number) => `${PRELUDE}
const h = Buffer.from(JSON.stringify({ kind: 'res', id: 987654321, ok: true, result: {} }));
const frame = Buffer.concat([prefix(h.length, 16 * 1024 * 1024 - 64 - h.length), h, Buffer.alloc(16 * 1024 * 1024 - 64 - h.length, 0x61)]);
const end = Date.now() + ${secs * 1000}; globalThis.__flooded = 0;
const tick = () => { writeAll(frame); globalThis.__flooded++; if (Date.now() < end) setTimeout(tick, 0); };
setTimeout(tick, 300); 'armed';`,
  stopReading: (secs: number) => `
require('child_process').spawn('sh', ['-c', 'sleep 0.5; kill -STOP ' + process.pid + '; sleep ${secs}; kill -CONT ' + process.pid], { detached: true, stdio: 'ignore' }).unref();
'armed';`,
};

interface Phase {
  name: string;
  pingMs: number[];
  pingErrors: number;
  heapPeak: number;
  externalPeak: number;
  rssPeak: number;
  note: string;
}

async function measure(d: TestDaemon, c: Controller, calm: string, name: string, secs: number, during?: () => Promise<string>): Promise<Phase> {
  const end = Date.now() + secs * 1000;
  const p: Phase = { name, pingMs: [], pingErrors: 0, heapPeak: 0, externalPeak: 0, rssPeak: 0, note: '' };
  const pinger = (async () => {
    while (Date.now() < end) {
      const t = performance.now();
      try {
        await c.pingSandbox(calm);
        p.pingMs.push(performance.now() - t);
      } catch {
        p.pingErrors++;
      }
    }
  })();
  const sampler = (async () => {
    while (Date.now() < end) {
      const m = await daemonMemory(d).catch(() => ({ heap: 0, external: 0 }));
      p.heapPeak = Math.max(p.heapPeak, m.heap);
      p.externalPeak = Math.max(p.externalPeak, m.external);
      p.rssPeak = Math.max(p.rssPeak, rssMiB(d.proc.pid!));
      await sleep(250);
    }
  })();
  const [note] = await Promise.all([during ? during() : Promise.resolve(''), pinger, sampler]);
  p.note = note;
  return p;
}

export const r4: Scenario = {
  id: 'R4',
  title: 'hostile guest while another sandbox is pinged',
  vm: true,
  async run(o, out) {
    benchRunDir();
    const secs = o.quick ? 5 : 20;
    const d = await startTestDaemon({ keeperGraceSecs: 5 });
    const c = new Controller({ socketPath: d.socketPath });
    try {
      const [calm, ...hostiles] = await c.spawnSandboxes({ snapshot_tag: d.tag, n: 5, timeout_ms: 3_600_000 });
      let h = '';
      /** The next attack's sandbox. */
      const nextHostile = () => (h = hostiles.shift()!.id);
      for (let i = 0; i < 20; i++) await c.pingSandbox(calm!.id); // warm the path
      const arm = async (code: string) => {
        try {
          return `armed: ${(await c.eval(h, { code, language: 'js', timeout_secs: 10 })).result}`;
        } catch (e) {
          return `arming eval: ${(e as { code?: string }).code ?? (e as Error).message}`;
        }
      };
      /** Calls on the hostile sandbox that must get their real answer, never a forged one. */
      const probeHostile = async (n: number) => {
        let real = 0;
        let forged = 0;
        let failed = 0;
        for (let i = 0; i < n; i++) {
          try {
            const r = await c.eval(h, { code: '6 * 7', language: 'js', timeout_secs: 5 });
            if (r.result === '42') real++;
            else failed++;
          } catch (e) {
            if (/forged/.test((e as Error).message)) forged++;
            else failed++;
          }
        }
        return `calls on the hostile sandbox meanwhile: ${real} real answers, ${forged} forged accepted, ${failed} failed`;
      };
      const phases: Phase[] = [];
      phases.push(await measure(d, c, calm!.id, 'calm', secs));
      phases.push(await measure(d, c, calm!.id, 'trickled partial frame (1 byte per write)', secs, async () => {
        nextHostile();
        const armed = await arm(attacks.trickle(secs));
        await sleep(secs * 1000);
        const n = await c.eval(h, { code: 'globalThis.__trickled', language: 'js', timeout_secs: 5 }).then((r) => `${r.result} bytes trickled`, (e: { code?: string }) => `the sandbox's own replies are lost in the open frame afterwards (${e.code ?? 'error'})`);
        return `${armed}; ${n}`;
      }));
      await sleep(1000);
      phases.push(await measure(d, c, calm!.id, 'forged replies (1,000 every 100 ms)', secs, async () => {
        nextHostile();
        const armed = await arm(attacks.forged(secs));
        await sleep(1000);
        return `${armed}; ${await probeHostile(10)}`;
      }));
      await sleep(1000);
      phases.push(await measure(d, c, calm!.id, 'flood of unsolicited 16 MiB frames', secs, async () => {
        nextHostile();
        const armed = await arm(attacks.flood(secs));
        await sleep(secs * 1000);
        const n = await c.eval(h, { code: 'globalThis.__flooded', language: 'js', timeout_secs: 30 }).then((r) => `${r.result} frames sent`, (e: Error) => `count unknown (${e.message.slice(0, 80)})`);
        return `${armed}; ${n}`;
      }));
      await sleep(1000);
      phases.push(await measure(d, c, calm!.id, 'guest stops reading (agent SIGSTOPped), 20 × 4 MiB uploads sent to it', secs, async () => {
        nextHostile();
        const armed = await arm(attacks.stopReading(secs));
        await sleep(1000);
        const body = Buffer.alloc(4 * 1024 * 1024, 0x62);
        const ups = await Promise.all(Array.from({ length: 20 }, (_, i) => raw(d, { method: 'PUT', path: `/v1/sandboxes/${h}/files?path=/tmp/up-${i}`, body, headers: { 'content-type': 'application/octet-stream' }, timeoutMs: secs * 1000 }).then((r) => String(r.status), () => 'no answer')));
        const tally = new Map<string, number>();
        for (const u of ups) tally.set(u, (tally.get(u) ?? 0) + 1);
        return `${armed}; uploads: ${[...tally].map(([k, n]) => `${n} × ${k}`).join(', ')}`;
      }));
      await sleep(2000);
      phases.push(await measure(d, c, calm!.id, 'calm again', secs));
      const hostileAfter = await c.pingSandbox(h).then(() => 'answers ping again', (e: { code?: string }) => `does not answer (${e.code ?? 'error'})`);

      const base = phases[0]!;
      const baseHeap = base.heapPeak;
      const baseP99 = stats(base.pingMs).p99;
      out(`phases of ${secs} s each; the calm sandbox is pinged back to back through REST; heap = the daemon's V8 heap in use, external = its memory outside the V8 heap (Buffers), both peaks of samples every 250 ms`);
      out('');
      out('| phase | heap peak (growth over calm) | external peak (growth) | RSS peak | calm sandbox ping p50 / p99 / max | p99 vs calm | pings (errors) |');
      out('|---|---|---|---|---|---|---|');
      for (const p of phases) {
        const s = stats(p.pingMs);
        out(`| ${p.name} | ${p.heapPeak.toFixed(0)} MiB (${p === base ? '-' : `${p.heapPeak - baseHeap >= 0 ? '+' : ''}${(p.heapPeak - baseHeap).toFixed(0)}`}) | ${p.externalPeak.toFixed(0)} MiB (${p === base ? '-' : `${p.externalPeak - base.externalPeak >= 0 ? '+' : ''}${(p.externalPeak - base.externalPeak).toFixed(0)}`}) | ${p.rssPeak.toFixed(0)} MiB | ${s.median.toFixed(1)} / ${s.p99.toFixed(1)} / ${s.max.toFixed(1)} ms | ${(s.p99 / baseP99).toFixed(2)}x | ${p.pingMs.length} (${p.pingErrors}) |`);
      }
      out('');
      out('targets: heap growth < 64 MiB, ping p99 ≤ 2x calm');
      for (const p of phases) if (p.note) out(`- ${p.name}: ${p.note}`);
      out(`- the sandbox that stopped reading, after SIGCONT: ${hostileAfter}`);
    } finally {
      await d.stop();
    }
  },
};

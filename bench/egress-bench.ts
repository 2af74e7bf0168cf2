/**
 * Egress costs, measured against real namespaces (no VM): rule application per child (applyEgress:
 * proxy policy + one nft transaction), first byte of an HTTP request through the name-checking proxy
 * against the same request allowed by CIDR (direct), and a download's throughput both ways.
 * Traffic stays inside namespaces this script creates. Run as root: npm run bench:egress
 */
import os from 'node:os';
import path from 'node:path';
import { EgressService, DEFAULT_PROXY } from '@forkd/engine';
import { EgressTestNet, TEST_HOST, POOL } from '../packages/engine/src/network/egress/testing/fixture.js';
import type { Probe } from '../packages/engine/src/network/egress/testing/probe.js';

const N = Number(process.env.EGRESS_BENCH_N ?? 20);
const MB = Number(process.env.EGRESS_BENCH_MB ?? 256);
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0]!.toFixed(1)} / median ${s[Math.floor(s.length / 2)]!.toFixed(1)} / max ${s.at(-1)!.toFixed(1)}`;
};

const tn = await EgressTestNet.create(`ebn${(process.pid % 1000).toString(36)}`);
let egress: EgressService | null = null;
try {
  const child = await tn.addChild(1, { guest: true });
  egress = await EgressService.start(
    { defaultEgress: 'deny', childPools: [POOL], hostAddresses: [], allowPrivate: [TEST_HOST.range], proxy: DEFAULT_PROXY, resolvers: [TEST_HOST.real] },
    { uplinkNetns: tn.uplink, controlSocket: path.join(os.tmpdir(), `${tn.prefix}-egress.sock`) },
  );
  const apply: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    await egress.applyEgress(child, i % 2 ? { allowOut: ['allowed.test', `${TEST_HOST.other}/32`] } : { allowOut: [`${TEST_HOST.real}/32:80`, 'pypi.org'], denyOut: ['1.2.3.4'] });
    apply.push(performance.now() - t0);
  }
  console.log(`applyEgress per child (n=${N}): ${stats(apply)} ms`);

  const small = (p: Probe) => Array.from({ length: N }, () => p);
  const big = (addr: string, host: string): Probe => ({ kind: 'http', addr, host, path: `/big?mb=${MB}` });
  for (const [label, policy] of [['through the proxy (name rule)', { allowOut: ['allowed.test'] }], ['direct (CIDR rule)', { allowOut: [`${TEST_HOST.real}/32`] }]] as const) {
    await egress.applyEgress(child, policy);
    const fb = await tn.probe(child.guestNs, small({ kind: 'http', addr: TEST_HOST.real, host: 'allowed.test' }), 10_000);
    const single: number[] = [];
    for (let i = 0; i < 5; i++) single.push((await tn.probe(child.guestNs, [{ kind: 'http', addr: TEST_HOST.real, host: 'allowed.test' }], 10_000))[0]!.firstByteMs ?? NaN);
    const dl = (await tn.probe(child.guestNs, [big(TEST_HOST.real, 'allowed.test')], 120_000))[0]!;
    const okAll = fb.every((r) => r.ok) && dl.ok;
    console.log(`${label}: first byte alone (n=5) ${stats(single)} ms, ${N} at once ${stats(fb.map((r) => r.firstByteMs ?? NaN))} ms; download ${(dl.bytes! / 2 ** 20).toFixed(0)} MiB in ${dl.ms.toFixed(0)} ms = ${((dl.bytes! / 2 ** 20) / (dl.ms / 1000)).toFixed(0)} MiB/s${okAll ? '' : ' (SOME PROBES FAILED)'}`);
  }
} finally {
  await egress?.stop();
  await tn.destroy();
}

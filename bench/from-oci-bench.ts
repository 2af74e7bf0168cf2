/**
 * Issue-12 benchmark: `forkd image from-oci` of a ~120 MiB image (two gzip layers: a static busybox,
 * and the host's /usr/lib/gcc as real files) pulled from a loopback registry (Debian's
 * docker-registry, temp storage), each run under a new name so nothing is cached.
 * Baseline in the same run: what a Docker-less script does for the same layers with no checks:
 * `tar -xzf` of each layer into a directory, then `mkfs.ext4 -d` (no digests, no whiteouts, no
 * runtime). RUNS=3 by default. Usage: npm run bench:from-oci
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Engine, summarize, nowMs, since } from '@forkd/engine';
import { startRegistry, RegistryClient, sha256Digest } from '@forkd/engine/testing';
import { hostLine, loadAverage } from './host.js';

const RUNS = Number(process.env.RUNS ?? 3);
const DISK_MIB = 1024;
const log = (s: string) => process.stderr.write(`${s}\n`);
const engine = new Engine({ accel: 'auto', network: false });
const work = `${engine.layout.root}-from-oci-bench`;
await fs.rm(work, { recursive: true, force: true });
await fs.mkdir(path.join(work, 'stage', 'bin'), { recursive: true });
const registry = await startRegistry();
const fmt = (s: { min: number; median: number; max: number }) => `${(s.min / 1000).toFixed(2)} / ${(s.median / 1000).toFixed(2)} / ${(s.max / 1000).toFixed(2)} s`;

try {
  await fs.copyFile('/bin/busybox', path.join(work, 'stage', 'bin', 'busybox'));
  execFileSync('sh', ['-c', `cd "${work}/stage" && ln -s busybox bin/sh && tar -cf - bin | gzip -6 > "${work}/l1.tgz" && tar -C / -cf - usr/lib/gcc | gzip -6 > "${work}/l2.tgz"`]);
  const layers = [];
  const diffIds = [];
  let unpacked = 0;
  for (const l of ['l1.tgz', 'l2.tgz']) {
    const gz = await fs.readFile(path.join(work, l));
    const tar = execFileSync('gzip', ['-dc', path.join(work, l)], { maxBuffer: 1 << 30 });
    unpacked += tar.length;
    diffIds.push(sha256Digest(tar));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256Digest(gz), size: gz.length, file: path.join(work, l) });
  }
  const cfg = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', config: { Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
  await fs.writeFile(path.join(work, 'cfg.json'), cfg);
  const client = new RegistryClient(registry.host);
  for (const l of layers) await client.pushBlob('bench/gcc', l.digest, l.size, l.file);
  await client.pushBlob('bench/gcc', sha256Digest(cfg), cfg.length, path.join(work, 'cfg.json'));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(cfg), size: cfg.length }, layers: layers.map(({ file: _f, ...d }) => d) }));
  await client.putManifest('bench/gcc', 'v1', manifest);
  const compressed = layers.reduce((a, l) => a + l.size, 0);
  log(`image: 2 layers, ${(unpacked / 2 ** 20).toFixed(1)} MiB of tar, ${(compressed / 2 ** 20).toFixed(1)} MiB gzip, on ${registry.host}`);

  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    let t0 = nowMs();
    const dir = path.join(work, `baseline-${i}`);
    await fs.mkdir(dir);
    for (const l of layers) execFileSync('tar', ['-xzf', l.file, '-C', dir, '--numeric-owner']);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', '-d', dir, path.join(work, `baseline-${i}.ext4`), `${DISK_MIB}M`]);
    base.push(since(t0));
    await fs.rm(dir, { recursive: true, force: true });
    await fs.rm(path.join(work, `baseline-${i}.ext4`), { force: true });

    t0 = nowMs();
    const info = await engine.imageFromOci(`${registry.host}/bench/gcc:v1`, { name: `bench-from-oci-${process.pid}-${i}`, diskMib: DISK_MIB });
    ours.push(since(t0));
    if (info.cached) throw new Error('a bench run hit the cache');
    await fs.rm(path.dirname(info.path), { recursive: true, force: true });
    log(`run ${i + 1}: from-oci ${(ours[i]! / 1000).toFixed(2)} s, baseline ${(base[i]! / 1000).toFixed(2)} s (load ${loadAverage()})`);
  }
  const o = summarize(ours);
  const b = summarize(base);
  process.stdout.write([
    `# from-oci: ${RUNS} runs, ${hostLine()}, load ${loadAverage()}`,
    `command: npm run bench:from-oci (RUNS=${RUNS})`,
    '',
    '| | min / median / max |',
    '|---|---|',
    `| baseline: tar -xzf each layer + mkfs.ext4 -d | ${fmt(b)} |`,
    `| forkd image from-oci (registry, digests, whiteouts, runtime, mkfs) | ${fmt(o)} |`,
    `| ratio (median) | ${(o.median / b.median).toFixed(2)}x |`,
    '',
  ].join('\n'));
} finally {
  await registry.stop();
  await fs.rm(work, { recursive: true, force: true });
}

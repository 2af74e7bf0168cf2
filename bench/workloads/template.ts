/**
 * Template build (issue 15 §3/§4): a small template (the python recipe's packages as a leading apt
 * step, a copied file, envs, a workdir, a command, a start command with a port ready check) built
 * cold, rebuilt unchanged, and rebuilt with only its last step changed. "Cold" means every step
 * layer and the snapshot are new (the copied file holds a fresh nonce, so every step's key
 * changes); the base image (debootstrap of the package set) is the cached python image, as it is
 * for any template on it: debootstrap needs the Debian mirrors and is measured by the image
 * builder, not here. Each build is checked, not assumed: the cache hits are the build's own
 * reports, and a child of the cold build must serve the copied file through the started service.
 */
import crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { nowMs, since, summarize, putTemplateFile, type Engine, type ProgressEvent } from '@forkd/engine';
import { fmt, type PartContext, type WorkloadPart } from './part.js';

const TAG = 'bench-template';

function template(fileSha: string, lastCmd: string): unknown {
  return {
    name: 'bench-template',
    language: 'python',
    disk_mib: 2048,
    default_mem_mib: 512,
    steps: [
      { type: 'apt', packages: ['python3-numpy'] },
      { type: 'copy', files: [{ sha256: fileSha, dest: '/srv/app/index.html', mode: 0o644 }] },
      { type: 'env', envs: { APP_MODE: 'bench' } },
      { type: 'workdir', path: '/srv/app' },
      { type: 'run', cmd: lastCmd },
    ],
    services: [{ name: 'start', start: 'exec python3 -m http.server 8080 --bind 127.0.0.1', ready: { port: 8080 }, timeout_secs: 300 }],
  };
}

interface Build { ms: number; vmBooted: boolean; ranSteps: number; imageCached: boolean; snapshotCached: boolean; imageKey: string }

async function build(engine: Engine, raw: unknown): Promise<Build> {
  const events: ProgressEvent[] = [];
  const recipe = await engine.resolveTemplate(raw, 'bench template');
  const t0 = nowMs();
  const r = await engine.buildTemplate({ tag: TAG, recipe, onProgress: (e) => void events.push(e) });
  return { ms: since(t0), vmBooted: events.some((e) => e.phase === 'boot'), ranSteps: r.image.steps.filter((s) => !s.cached).length, imageCached: r.image.cached, snapshotCached: r.snapshot_cached, imageKey: r.image.key };
}

async function childServes(engine: Engine, body: string): Promise<void> {
  const [kid] = await engine.spawn({ tag: TAG, n: 1 });
  try {
    const res = await kid!.commands.exec({ shell: "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:8080/index.html').read().decode(),end='')\"" });
    if (res.stdout !== body) throw new Error(`the child of the cold build did not serve the copied file: ${JSON.stringify(res)}`);
  } finally {
    await kid!.kill();
  }
}

interface Round { cold: Build; unchanged: Build; lastChanged: Build }

export const part: WorkloadPart = {
  name: 'template build: cold (every step and the snapshot new) vs unchanged rebuild vs last step changed',
  async run({ engine, rounds, log }: PartContext) {
    const out: Round[] = [];
    const images = new Set<string>();
    try {
      for (let r = 0; r < rounds; r++) {
        const body = `<title>bench ${crypto.randomBytes(8).toString('hex')}</title>\n`;
        const sha = crypto.createHash('sha256').update(body).digest('hex');
        await putTemplateFile(engine.layout, sha, Buffer.from(body));
        const first = 'echo "$APP_MODE" > mode.txt && echo step-ran';
        const cold = await build(engine, template(sha, first));
        images.add(cold.imageKey);
        if (cold.imageCached || cold.snapshotCached || cold.ranSteps !== 4) throw new Error(`round ${r + 1}: the cold build reused something: ${JSON.stringify(cold)}`);
        await childServes(engine, body);
        log(`  round ${r + 1}: cold build ${cold.ms.toFixed(0)} ms (4 steps ran, snapshot made; a child serves the copied file)`);
        const unchanged = await build(engine, template(sha, first));
        if (!unchanged.imageCached || !unchanged.snapshotCached || unchanged.vmBooted || unchanged.ranSteps !== 0) throw new Error(`round ${r + 1}: the unchanged rebuild was not a cache hit: ${JSON.stringify(unchanged)}`);
        log(`  round ${r + 1}: unchanged rebuild ${unchanged.ms.toFixed(0)} ms (no VM)`);
        const lastChanged = await build(engine, template(sha, 'echo changed > changed.txt && echo step-ran'));
        images.add(lastChanged.imageKey);
        if (lastChanged.ranSteps !== 1) throw new Error(`round ${r + 1}: changing the last step reran ${lastChanged.ranSteps} steps`);
        log(`  round ${r + 1}: last step changed ${lastChanged.ms.toFixed(0)} ms (1 step ran, snapshot made again)`);
        out.push({ cold, unchanged, lastChanged });
      }
    } finally {
      await engine.removeSnapshot(TAG).catch(() => undefined);
      // The bench's flattened images (each a disk_mib raw file); its small qcow2 step layers stay cached.
      for (const k of images) await fs.rm(path.join(engine.layout.images, k), { recursive: true, force: true });
    }
    const per = (f: (r: Round) => number) => summarize(out.map(f));
    const cold = per((r) => r.cold.ms);
    const unchanged = per((r) => r.unchanged.ms);
    const last = per((r) => r.lastChanged.ms);
    return {
      rows: [
        `| cold build: 4 steps in a build VM, flatten, parent boot + service ready + snapshot | ${fmt(cold)} | |`,
        `| unchanged rebuild (every step and the snapshot cached, no VM) | ${fmt(unchanged, 'ms', 1)} | ≈ 0 |`,
        `| last step changed (1 step reruns on cached layers, new snapshot) | ${fmt(last)} | |`,
        `| cold build vs unchanged rebuild | ${fmt(summarize(out.map((r) => r.cold.ms / r.unchanged.ms)), 'x', 0)} | |`,
        `| cold build vs last step changed | ${fmt(summarize(out.map((r) => r.cold.ms / r.lastChanged.ms)), 'x', 2)} | |`,
      ],
      notes: [
        'Template: apt python3-numpy (joins the base image: the cached python image), copy 1 file, env, workdir, run a command; start command `python3 -m http.server` ready on port 8080; 512 MiB, 1 vCPU.',
        'Cold: the copied file holds a fresh nonce, so every step layer and the snapshot are new; the base image is cached (as for any template on a built recipe). Cache hits are asserted from the build reports, not timings.',
      ],
      raw: { rounds: out },
    };
  },
};

/**
 * E2B-shaped template builder: `Template().fromDebian().aptInstall([...]).copy(...).runCmd(...)
 * .setEnvs({...}).setStartCmd(cmd, waitForPort(8000))`, then `Template.build(t, 'name')`. What it
 * produces is a recipe JSON (protocol/src/recipe.ts RecipeSchema: the same description as
 * recipes/*.json and `forkd template build FILE`); the daemon builds the image (a cached layer per
 * step) and the warm snapshot `name`, which Sandbox.create('name') then forks.
 *
 * copy() takes host files: build() hashes them, uploads the ones the daemon lacks, and the recipe
 * names them by digest, so a file's bytes (not its path) decide whether its step is cached.
 */
import { promises as fs } from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { routes, routePath, TemplateBuildResult as TemplateBuildResultSchema } from '@forkd/api';
import { LIMITS, type RecipeInputT, type TemplateStepT } from '@forkd/protocol';
import type { z } from 'zod';
import { Controller, type Job } from './controller.js';
import { send, readJson } from './transport.js';
import { errorFor } from './errors.js';
import type { SandboxConnectionOpts } from './sandbox.js';

/** One ready check (E2B's waitForPort / waitForURL / waitForFile / a command). */
export type ReadyCheck = { port: number } | { url: string } | { file: string } | { cmd: string };
export const waitForPort = (port: number): ReadyCheck => ({ port });
export const waitForURL = (url: string): ReadyCheck => ({ url });
export const waitForFile = (file: string): ReadyCheck => ({ file });
/** Ready once a process with this exact name runs (pgrep -x). */
export const waitForProcess = (name: string): ReadyCheck => ({ cmd: `pgrep -x ${shellQuote(name)} >/dev/null` });
export const waitForTimeout = (): never => {
  throw errorFor('FORKD_E_INVALID_ARGUMENT', 'forkd has no sleep-based ready check: wait for a port, URL, file, process or command');
};

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

type CopySource = { kind: 'pending'; src: string | Uint8Array; dest: string; mode?: number };
type Step = TemplateStepT | CopySource;
export type TemplateBuildResult = z.output<typeof TemplateBuildResultSchema>;

export interface TemplateBuildOpts extends SandboxConnectionOpts {
  /** Snapshot tag (default: the template's name). */
  tag?: string;
  memMib?: number;
  /** Build progress and log lines (step output arrives as phase "template-log"). */
  onBuildLogs?: (ev: { phase: string; message: string; fraction: number | null }) => void;
  /** Give up waiting after this long (default 1 h). */
  timeoutMs?: number;
}

export class Template {
  #from: string | undefined;
  #language: 'python' | 'js' | undefined;
  #steps: Step[] = [];
  #services: Array<{ name: string; start: string | string[]; ready: ReadyCheck; timeout_secs: number; user?: string }> = [];
  #extra: Partial<Pick<RecipeInputT, 'disk_mib' | 'default_mem_mib' | 'min_mem_mib' | 'description' | 'warmup'>> = {};

  /** A template on Debian 12 with only the forkd agent (E2B's fromDebianImage / fromBaseImage). */
  fromDebian(): this {
    this.#from = undefined;
    return this;
  }

  /** On a recipe (recipes/*.json: python, node, ...) or a template built earlier on this daemon. */
  fromTemplate(name: string): this {
    this.#from = name;
    return this;
  }

  aptInstall(packages: string | string[]): this {
    this.#steps.push({ type: 'apt', packages: list(packages) });
    return this;
  }

  /** network: false installs from files already in the image (a copied wheel) with --no-index. */
  pipInstall(packages: string | string[], o: { network?: boolean } = {}): this {
    this.#steps.push({ type: 'pip', packages: list(packages), network: o.network ?? true });
    this.#language ??= 'python';
    return this;
  }

  /** g (default true): a global install; network: false uses only local tarballs (--offline). */
  npmInstall(packages: string | string[], o: { g?: boolean; network?: boolean } = {}): this {
    this.#steps.push({ type: 'npm', packages: list(packages), global: o.g ?? true, network: o.network ?? true });
    return this;
  }

  /** Host files (or bytes) into the image. A directory is copied with everything under it. */
  copy(src: string | Uint8Array, dest: string, o: { mode?: number } = {}): this {
    this.#steps.push({ kind: 'pending', src, dest, ...(o.mode !== undefined ? { mode: o.mode } : {}) });
    return this;
  }

  runCmd(cmd: string | string[], o: { user?: string; network?: boolean; timeoutSecs?: number } = {}): this {
    this.#steps.push({ type: 'run', cmd, network: o.network ?? false, ...(o.user ? { user: o.user } : {}), ...(o.timeoutSecs ? { timeout_secs: o.timeoutSecs } : {}) });
    return this;
  }

  setEnvs(envs: Record<string, string>): this {
    this.#steps.push({ type: 'env', envs });
    return this;
  }

  setWorkdir(dir: string): this {
    this.#steps.push({ type: 'workdir', path: dir });
    return this;
  }

  /** The process the parent starts before the snapshot (every child has it running), and when it is ready. */
  setStartCmd(cmd: string | string[], ready: ReadyCheck | string, o: { timeoutSecs?: number; user?: string } = {}): this {
    this.#services = [{ name: 'start', start: cmd, ready: readyOf(ready), timeout_secs: o.timeoutSecs ?? 300, ...(o.user ? { user: o.user } : {}) }];
    return this;
  }

  /** Replaces the start command's ready check (setStartCmd first: forkd's ready checks belong to a started process). */
  setReadyCmd(ready: ReadyCheck | string): this {
    const svc = this.#services[0];
    if (!svc) throw errorFor('FORKD_E_INVALID_ARGUMENT', 'setReadyCmd needs setStartCmd first: the ready check waits for the started process');
    svc.ready = readyOf(ready);
    return this;
  }

  /** The language of the warm interpreter children eval in (default: python once pip is used, else the base's, else js). */
  setLanguage(language: 'python' | 'js'): this {
    this.#language = language;
    return this;
  }

  /** Disk size and memory (floor and default) of the template's VMs. */
  setResources(o: { diskMib?: number; memMib?: number; minMemMib?: number }): this {
    if (o.diskMib !== undefined) this.#extra.disk_mib = o.diskMib;
    if (o.memMib !== undefined) this.#extra.default_mem_mib = o.memMib;
    if (o.minMemMib !== undefined) this.#extra.min_mem_mib = o.minMemMib;
    return this;
  }

  /**
   * The recipe JSON this template is (copies resolved to digests). The files' bytes are returned
   * beside it, by digest, for upload.
   */
  async toRecipe(name: string): Promise<{ recipe: RecipeInputT; files: Map<string, Uint8Array> }> {
    const files = new Map<string, Uint8Array>();
    const steps: TemplateStepT[] = [];
    for (const s of this.#steps) {
      if (!('kind' in s)) {
        steps.push(s);
        continue;
      }
      const entries = await expandCopy(s);
      for (const e of entries) files.set(e.sha256, e.data);
      steps.push({ type: 'copy', files: entries.map((e) => ({ sha256: e.sha256, dest: e.dest, ...(e.mode !== undefined ? { mode: e.mode } : {}) })) });
    }
    const recipe: RecipeInputT = {
      name,
      ...(this.#from !== undefined ? { from: this.#from } : {}),
      ...(this.#language !== undefined ? { language: this.#language } : {}),
      ...this.#extra,
      steps,
      ...(this.#services.length > 0 ? { services: this.#services } : {}),
    };
    return { recipe, files };
  }

  /**
   * Builds the template on the daemon: uploads the copied files it lacks, then waits for the build
   * job (image layers and warm snapshot), passing its progress and log lines to onBuildLogs. A
   * failing step throws FORKD_E_TEMPLATE_STEP_FAILED with details.step_index, exit_code and output.
   */
  static async build(t: Template, name: string, o: TemplateBuildOpts = {}): Promise<TemplateBuildResult> {
    const ctl = new Controller({
      ...(o.url !== undefined ? { url: o.url } : {}),
      ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : {}),
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.requestTimeoutMs !== undefined ? { timeoutMs: o.requestTimeoutMs } : {}),
    });
    const { recipe, files } = await t.toRecipe(name);
    return buildRecipe(ctl, recipe, files, { ...o, tag: o.tag ?? name });
  }
}

/**
 * Builds a recipe JSON on the daemon (what Template.build and `forkd template build` do): uploads
 * the files it lacks, starts the build job and follows it to its end.
 */
export async function buildRecipe(ctl: Controller, recipe: RecipeInputT, files: Map<string, Uint8Array>, o: Omit<TemplateBuildOpts, 'tag'> & { tag: string }): Promise<TemplateBuildResult> {
  await uploadMissing(ctl, files);
  const started = await ctl.call('buildTemplate', { body: { tag: o.tag, template: recipe as never, ...(o.memMib !== undefined ? { mem_mib: o.memMib } : {}), wait: false } }) as Job | TemplateBuildResult;
  if (!('id' in started && 'status' in started)) return started;
  let last = '';
  return await ctl.waitJob(started.id, {
    pollMs: 250,
    timeoutMs: o.timeoutMs ?? 3_600_000,
    onProgress: (job) => {
      const key = `${job.progress.phase}\u0000${job.progress.message}`;
      if (key !== last) o.onBuildLogs?.(job.progress);
      last = key;
    },
  }) as TemplateBuildResult;
}

/**
 * A recipe file's copy entries that name host files (`{"src": "app/", "dest": "/opt/app"}`, paths
 * relative to baseDir) resolved to digests, with the bytes to upload: what the CLI does to a
 * template JSON before sending it (the wire form names files by sha256 only).
 */
export async function resolveCopySources(raw: unknown, baseDir: string): Promise<{ recipe: unknown; files: Map<string, Uint8Array> }> {
  const files = new Map<string, Uint8Array>();
  if (typeof raw !== 'object' || raw === null || !Array.isArray((raw as { steps?: unknown }).steps)) return { recipe: raw, files };
  const steps = [];
  for (const step of (raw as { steps: unknown[] }).steps) {
    const st = step as { type?: unknown; files?: unknown };
    if (st?.type !== 'copy' || !Array.isArray(st.files)) {
      steps.push(step);
      continue;
    }
    const out: unknown[] = [];
    for (const f of st.files as Array<{ src?: unknown; dest?: unknown; mode?: unknown }>) {
      if (typeof f?.src !== 'string') {
        out.push(f);
        continue;
      }
      const src = await confined(baseDir, f.src);
      const entries = await expandCopy({ kind: 'pending', src, dest: String(f.dest), ...(typeof f.mode === 'number' ? { mode: f.mode } : {}) });
      for (const e of entries) {
        files.set(e.sha256, e.data);
        out.push({ sha256: e.sha256, dest: e.dest, ...(e.mode !== undefined ? { mode: e.mode } : {}) });
      }
    }
    steps.push({ ...st, files: out });
  }
  return { recipe: { ...(raw as object), steps }, files };
}

/**
 * A template file's `src`, resolved against its directory and kept inside it (links followed): a
 * template from someone else cannot copy ~/.ssh or /etc into an image by naming `../../`.
 */
async function confined(baseDir: string, src: string): Promise<string> {
  const root = await fs.realpath(baseDir);
  const full = path.resolve(root, src);
  const real = await fs.realpath(full).catch(() => {
    throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: no such host file ${full}`);
  });
  if (path.isAbsolute(src) || (real !== root && !real.startsWith(root + path.sep))) {
    throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: src ${JSON.stringify(src)} leaves the template's directory ${root}; a template file copies only what is under it`);
  }
  return real;
}

/** Uploads the files whose digests the daemon does not have (content-addressed: an unchanged file never travels twice). */
async function uploadMissing(ctl: Controller, files: Map<string, Uint8Array>): Promise<void> {
  if (files.size === 0) return;
  const { missing } = await ctl.call('templateFilesMissing', { body: { sha256: [...files.keys()] } });
  for (const d of missing) {
    const data = files.get(d)!;
    const res = await send(ctl.endpoint, { method: 'PUT', path: routePath(routes.putTemplateFile.path, { sha256: d }), body: Buffer.from(data.buffer, data.byteOffset, data.byteLength), timeoutMs: 600_000 });
    await readJson(res);
  }
}

type CopyEntry = { sha256: string; dest: string; mode?: number; data: Uint8Array };

/**
 * A copy's files with their digests. Refused before anything is read or sent: a file over
 * maxCopyFileBytes (FORKD_E_PAYLOAD_TOO_LARGE), a tree over maxCopyFiles, and a link that leads
 * out of the copied tree (it would put a host file the tree does not hold into the image).
 */
async function expandCopy(c: CopySource): Promise<CopyEntry[]> {
  const digest = (d: Uint8Array) => crypto.createHash('sha256').update(d).digest('hex');
  const { maxCopyFileBytes, maxCopyFiles } = LIMITS.templates;
  const tooBig = (what: string, bytes: number) => errorFor('FORKD_E_PAYLOAD_TOO_LARGE', `copy: ${what} holds ${bytes} bytes; a template file may hold at most ${maxCopyFileBytes}`, { max_bytes: maxCopyFileBytes });
  if (typeof c.src !== 'string') {
    if (c.src.byteLength > maxCopyFileBytes) throw tooBig(`the bytes for ${c.dest}`, c.src.byteLength);
    return [{ sha256: digest(c.src), dest: c.dest, ...(c.mode !== undefined ? { mode: c.mode } : {}), data: c.src }];
  }
  let st;
  try {
    st = await fs.stat(c.src);
  } catch {
    throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: no such host file ${c.src}`);
  }
  if (st.isFile()) {
    if (st.size > maxCopyFileBytes) throw tooBig(c.src, st.size);
    const data = await fs.readFile(c.src);
    return [{ sha256: digest(data), dest: c.dest, mode: c.mode ?? st.mode & 0o777, data }];
  }
  if (!st.isDirectory()) throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: ${c.src} is neither a file nor a directory`);
  const root = await fs.realpath(c.src);
  const out: CopyEntry[] = [];
  for (const rel of (await fs.readdir(root, { recursive: true })).sort()) {
    const full = path.join(root, rel);
    const real = await fs.realpath(full);
    if (real !== root && !real.startsWith(root + path.sep)) throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: ${full} is a link out of ${root} (to ${real}); copy the target itself if it is meant`);
    const s = await fs.stat(real);
    if (!s.isFile()) continue;
    if (out.length >= maxCopyFiles) throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: ${c.src} holds more than ${maxCopyFiles} files (one copy step's limit)`, { max_files: maxCopyFiles });
    if (s.size > maxCopyFileBytes) throw tooBig(full, s.size);
    const data = await fs.readFile(real);
    out.push({ sha256: digest(data), dest: path.posix.join(c.dest, rel.split(path.sep).join('/')), mode: s.mode & 0o777, data });
  }
  if (out.length === 0) throw errorFor('FORKD_E_INVALID_ARGUMENT', `copy: directory ${c.src} holds no files`);
  return out;
}

function list(p: string | string[]): string[] {
  return typeof p === 'string' ? [p] : [...p];
}

function readyOf(r: ReadyCheck | string): ReadyCheck {
  return typeof r === 'string' ? { cmd: r } : r;
}

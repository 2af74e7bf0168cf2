/**
 * Recipes and templates: one description, declared once. A recipe names what goes into the image
 * (Debian packages), what the parent warms (services, warm-up code) and, since templates, ordered
 * build `steps` run in a build VM on top of that image (apt, pip, npm, copied files, commands,
 * envs, a working directory). The SDKs' Template builders produce exactly this JSON; the REST API,
 * OpenAPI and the Python types are generated from these schemas.
 */
import { z } from 'zod';
import { LIMITS, MACHINE_LIMITS } from './limits.js';
import { Argv, EnvMap, GuestPath } from './shapes.js';
import { BrowserWarmup, EvalLanguage, GuestUser, ServiceList } from './agent-api.js';

const T = LIMITS.templates;

export const RecipeName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'recipe name: lowercase letters, digits, . _ -');
export const DebianPackage = z.string().regex(/^[a-z0-9][a-z0-9.+-]+$/, 'invalid Debian package name');
/**
 * A pip or npm argument: a requirement (`requests==2.31`, `lodash@4`) or a path in the image (a
 * wheel or tarball copied in). Passed as argv, never through a shell; no leading `-` (no options).
 */
export const InstallArg = z.string().min(1).max(512).regex(/^[A-Za-z0-9@/_.][A-Za-z0-9@/_.:=<>!~+,\-[\]]*$/, 'invalid package argument (letters, digits, @ / _ . : = < > ! ~ + , - [ ]; no leading -)');
export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'sha256: 64 lowercase hex digits');
const stepTimeout = z.number().int().min(1).max(T.maxStepTimeoutSecs);

/** Kernel filesystems a template may not write into: a copy or workdir there is never a file of the image. */
const KERNEL_DIRS = ['/proc', '/sys', '/dev'];
/**
 * A path a template writes (a copied file, a working directory): absolute and already normal (no
 * `.`, `..` or empty segment, no trailing `/`), so the path in the recipe is the path in the image
 * and its cache key; never `/` itself nor under /proc, /sys or /dev.
 */
export const TemplatePath = GuestPath
  .refine((p) => p !== '/' && !p.endsWith('/'), 'a template path names a file or directory: not / and no trailing /')
  .refine((p) => p.split('/').slice(1).every((seg) => seg !== '' && seg !== '.' && seg !== '..'), 'a template path must be normal: no ., .. or empty segment')
  .refine((p) => !KERNEL_DIRS.some((d) => p === d || p.startsWith(`${d}/`)), `a template path may not be under ${KERNEL_DIRS.join(', ')} (kernel filesystems, not the image)`);

/** One file a copy step puts in the image: its content by digest (uploaded first), where, and its mode. */
export const TemplateCopyFile = z.object({
  sha256: Sha256Hex,
  dest: TemplatePath,
  mode: z.number().int().min(0).max(0o7777).optional(),
}).strict();

/** The build steps, in order. Each step's result is cached by the hash of everything up to it. */
export const TemplateStep = z.discriminatedUnion('type', [
  z.object({ type: z.literal('apt'), packages: z.array(DebianPackage).min(1).max(T.maxPackagesPerStep) }).strict(),
  /** pip install (--break-system-packages: Debian's python is externally managed). network: false for local wheels. */
  z.object({ type: z.literal('pip'), packages: z.array(InstallArg).min(1).max(T.maxPackagesPerStep), network: z.boolean().default(true), timeout_secs: stepTimeout.optional() }).strict(),
  /** npm install, global by default (E2B's npmInstall with g); else into the working directory. */
  z.object({ type: z.literal('npm'), packages: z.array(InstallArg).min(1).max(T.maxPackagesPerStep), global: z.boolean().default(true), network: z.boolean().default(true), timeout_secs: stepTimeout.optional() }).strict(),
  z.object({ type: z.literal('copy'), files: z.array(TemplateCopyFile).min(1).max(T.maxCopyFiles) }).strict(),
  /** A shell command line (or argv); must exit 0. network: true gives the build VM a way out for it. */
  z.object({ type: z.literal('run'), cmd: z.union([Argv, z.string().min(1).max(LIMITS.maxArgBytes)]), user: GuestUser.optional(), network: z.boolean().default(false), timeout_secs: stepTimeout.optional() }).strict(),
  /** Envs for every later step, the services and every child's commands. */
  z.object({ type: z.literal('env'), envs: EnvMap }).strict(),
  /** Working directory (made if missing) of later steps and of the services. */
  z.object({ type: z.literal('workdir'), path: TemplatePath }).strict(),
]);
export type TemplateStepT = z.output<typeof TemplateStep>;

/** A recipe (= a template): what goes into the image and what the parent warms before the snapshot. */
export const RecipeSchema = z.object({
  name: RecipeName,
  description: z.string().max(1000).default(''),
  /**
   * Another recipe or built template this one extends (E2B's fromTemplate): its packages, steps and
   * services come first, then this one's; this one's warm-up fields replace its, its disk is the larger.
   */
  from: RecipeName.optional(),
  /** Start from an image made by `forkd image from-oci REF --name NAME` instead of Debian (then no packages or steps). */
  from_image: RecipeName.optional(),
  suite: z.enum(['bookworm']).default('bookworm'),
  /** Extra Debian packages; the agent's own (nodejs, tini, iproute2) are always added. */
  packages: z.array(DebianPackage).max(200).default([]),
  disk_mib: z.number().int().min(512).max(65536).default(1024),
  default_mem_mib: z.number().int().min(MACHINE_LIMITS.memMib.min).max(MACHINE_LIMITS.memMib.max).default(512),
  min_mem_mib: z.number().int().min(MACHINE_LIMITS.memMib.min).max(MACHINE_LIMITS.memMib.max).default(192),
  language: EvalLanguage.default('js'),
  /**
   * Whether the parent may reach the network while it warms up (pip install, model downloads).
   * Children never inherit it: each gets its own network, or none, at spawn.
   */
  warmup_network: z.boolean().default(false),
  /** Build steps run in order in a build VM on the image (cached per step, see README.md, Templates from the SDK). */
  steps: z.array(TemplateStep).max(T.maxSteps).default([]),
  /**
   * Long-running processes the parent starts (in order, each until its ready check passes) before
   * its warm-up code runs and the snapshot is taken: every child restores with them running.
   */
  services: ServiceList.default([]),
  warmup: z.object({
    python_modules: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)).max(64).optional(),
    python: z.string().max(1024 * 1024).optional(),
    /** Run through run_code (IPython when the image has it) after `python`: warms the rich-results path. */
    python_cell: z.string().max(1024 * 1024).optional(),
    js: z.string().max(1024 * 1024).optional(),
    /** Playwright connects to the Chromium a service started (its DevTools port) and opens a context and a page: the browser language. */
    browser: BrowserWarmup.optional(),
  }).strict().default({}),
}).strict();
export type RecipeT = z.output<typeof RecipeSchema>;
export type RecipeInputT = z.input<typeof RecipeSchema>;

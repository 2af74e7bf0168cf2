// Bundles the guest agent for the guest's Node 18: dist/guest/agent.mjs (all deps inlined,
// zod included), playwright-core.cjs (the browser language) plus the helpers it starts: pyrepl.py (and pyrich.py, which it imports), and sys-helper.c, which the image builder
// compiles into the guest's forkd-sys, spawn-helper.c (forkd-spawn) and reseed-addon.c
// (forkd-reseed.node, loaded by the agent), see
// packages/engine/src/image/guest-helpers.ts.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, 'dist', 'guest');
fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

await build({
  entryPoints: [path.join(here, 'src', 'main.ts')],
  outfile: path.join(out, 'agent.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  conditions: ['source'],
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  banner: { js: "import { createRequire as __forkdCreateRequire } from 'node:module'; const require = __forkdCreateRequire(import.meta.url);" },
});
/**
 * playwright-core reads its own package.json at run time, by a path computed from __dirname
 * and browsers.json (`require(path.join(packageRoot, "package.json"))`), which esbuild cannot
 * follow: the bundle would look for /opt/package.json in the guest. The JSON is inlined instead.
 */
/**
 * The agent's own playwright-core (pinned for the guest's Node), not whatever another workspace
 * hoisted to the root (the web view's test uses a newer one that needs Node 20): Node's lookup order.
 */
const playwrightDir = [path.join(here, 'node_modules', 'playwright-core'), path.join(here, '..', '..', 'node_modules', 'playwright-core')].find((d) => fs.existsSync(path.join(d, 'package.json')));
if (!playwrightDir) throw new Error('playwright-core is not installed (npm ci)');
const pinned = JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8')).devDependencies['playwright-core'];
const found = JSON.parse(fs.readFileSync(path.join(playwrightDir, 'package.json'), 'utf8')).version;
if (found !== pinned) throw new Error(`playwright-core ${found} at ${playwrightDir}, the agent pins ${pinned}: run npm ci`);
const inlinePackageJson = {
  name: 'inline-playwright-package-json',
  setup(b) {
    const pkgDir = playwrightDir;
    b.onLoad({ filter: /playwright-core[\\/]lib[\\/].*\.js$/ }, (args) => {
      const src = fs.readFileSync(args.path, 'utf8');
      const out = src.replace(/require\(import_path\d*\.default\.join\(packageRoot, "(package|browsers)\.json"\)\)/g, (_, name) => `(${fs.readFileSync(path.join(pkgDir, `${name}.json`), 'utf8')})`);
      return { contents: out, loader: 'js' };
    });
  },
};

// Playwright for the browser language, in its own file: the agent loads it only when a recipe's
// warm-up connects to a browser (browser-repl.ts), so other images' agents never parse its 3.7 MB.
// Pinned in package.json (1.61.1: the newest playwright-core that still runs on the guest's Node 18).
await build({
  entryPoints: [path.join(playwrightDir, 'index.js')],
  outfile: path.join(out, 'playwright-core.cjs'),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node18',
  legalComments: 'none',
  // Not minifyIdentifiers: Playwright names its API calls in errors after its classes ("page.goto: Timeout ...").
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  // Loaded by playwright-core only for Electron and BiDi, neither of which this browser uses.
  external: ['electron', 'chromium-bidi/*'],
  plugins: [inlinePackageJson],
});
for (const f of ['pyrepl.py', 'pyrich.py', 'sys-helper.c', 'spawn-helper.c', 'reseed-addon.c']) fs.copyFileSync(path.join(here, 'src', f), path.join(out, f));
// The guest library (forkd.fork() from inside): the image builder installs it where the guest's
// python3 and node find it (engine/src/image/build.ts, GUEST_LIBRARY).
for (const f of ['forkd.py', 'forkd.cjs']) fs.copyFileSync(path.join(here, 'src', 'guest-lib', f), path.join(out, f));
console.log(`guest agent bundle: ${out}`);

// Bundles the guest agent for the guest's Node 18: dist/guest/agent.mjs (all deps inlined,
// zod included) plus the helpers it starts: pyrepl.py (and pyrich.py, which it imports), and sys-helper.c, which the image builder
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
for (const f of ['pyrepl.py', 'pyrich.py', 'sys-helper.c', 'spawn-helper.c', 'reseed-addon.c']) fs.copyFileSync(path.join(here, 'src', f), path.join(out, f));
// The guest library (forkd.fork() from inside): the image builder installs it where the guest's
// python3 and node find it (engine/src/image/build.ts, GUEST_LIBRARY).
for (const f of ['forkd.py', 'forkd.cjs']) fs.copyFileSync(path.join(here, 'src', 'guest-lib', f), path.join(out, f));
console.log(`guest agent bundle: ${out}`);

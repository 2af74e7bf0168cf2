/**
 * The playwright-browser recipe on real VMs: Chromium started headless in the parent (as nobody)
 * and Playwright connected to it with a context and a page open; in each child `eval` with the
 * language browser drives that page. One snapshot, two children: a page served inside the guest,
 * its title, a screenshot as a PNG rich result and through the files API, cookies that stay in
 * their own child, and a page that never loads failing with Playwright's TimeoutError while the
 * child stays usable. No network: every page is served by the guest itself.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PNG_SIGNATURE } from '@forkd/protocol';
import { agentOf, ensureRecipeSnapshot } from '../testing/fixture.js';
import { loadRecipe } from '../recipe/recipe.js';
import type { Engine } from '../engine.js';
import type { Sandbox } from '../sandbox/sandbox.js';

let engine: Engine;
let a: Sandbox;
let b: Sandbox;

const PAGE = '<!doctype html><html><head><title>forkd page TITLE</title></head><body style="background:#2a6"><h1>Hello from the guest</h1></body></html>';

async function browser(sb: Sandbox, code: string, timeoutMs = 60_000) {
  const r = await sb.eval('browser', code, { timeoutMs });
  return r;
}

async function value(sb: Sandbox, code: string): Promise<unknown> {
  const r = await browser(sb, code);
  assert.ok(r.ok, `${code}: ${r.error?.type}: ${r.error?.message}`);
  return r.json;
}

before(async () => {
  const { Engine } = await import('../engine.js');
  engine = new Engine({ accel: 'auto' });
  const { tag } = await ensureRecipeSnapshot(engine, 'itest-playwright-browser', await loadRecipe('playwright-browser'));
  [a, b] = await engine.spawn({ tag, n: 2, network: false }) as [Sandbox, Sandbox];
  for (const [sb, name] of [[a, 'A'], [b, 'B']] as const) await agentOf(sb).writeFile('/tmp/www/index.html', Buffer.from(PAGE.replace('TITLE', name)));
});
after(async () => {
  await Promise.all([a, b].map((s) => s?.kill().catch(() => undefined)));
  await engine?.cleanup().catch(() => undefined);
});

test('each child restores with the browser running and Playwright connected; a page served in the guest gives its title', async () => {
  const ping = await a.ping();
  assert.ok(ping.languages.includes('browser'), `languages: ${ping.languages.join(',')}`);
  const services = await agentOf(a).servicesList();
  assert.deepEqual(services.services.map((s) => [s.name, s.running]), [['pages', true], ['chromium', true]]);
  const t0 = performance.now();
  const titles = await Promise.all([a, b].map((sb) => value(sb, "await page.goto('http://127.0.0.1:8000/index.html'); return await page.title()")));
  process.stderr.write(`# two children: goto + title in ${(performance.now() - t0).toFixed(0)} ms\n`);
  assert.deepEqual(titles, ['forkd page A', 'forkd page B']);
  // The context and page were opened in the parent: the child drives the same objects across evals.
  assert.equal(await value(a, 'return page.url()'), 'http://127.0.0.1:8000/index.html');
  assert.equal(await value(a, 'return context.pages().length'), 1);
  // What the guest really uses with the page loaded (the recipe's min_mem_mib is measured against it).
  const mem = await a.commands.exec({ argv: ['sh', '-c', "awk '/^MemTotal:/{t=$2} /^MemAvailable:/{a=$2} END{print int((t-a)/1024)}' /proc/meminfo; for p in $(pgrep -f /usr/lib/chromium/chromium-headless-shell); do cat /proc/$p/smaps_rollup; done | awk '/^Pss:/{s+=$2} END{print int(s/1024)}'"] });
  const [usedMib, chromiumPssMib] = mem.stdout.trim().split('\n').map(Number);
  process.stderr.write(`# guest memory in use with the page loaded: ${usedMib} MiB (Chromium's processes: ${chromiumPssMib} MiB PSS)\n`);
  assert.ok(usedMib! > 0 && chromiumPssMib! > 0, mem.stdout + mem.stderr);
});

test('a screenshot is a PNG rich result and, with path, a file the files API reads', async () => {
  const r = await a.runCode("await page.goto('http://127.0.0.1:8000/index.html'); return await page.screenshot()", { language: 'browser' });
  assert.equal(r.error, null, JSON.stringify(r.error));
  assert.equal(r.interpreter, 'browser');
  assert.equal(r.results.length, 1);
  const png = r.images[0]!.png;
  assert.ok(png, 'a PNG beside the main result');
  assert.ok(png.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature');
  assert.equal(png.readUInt32BE(16), 1280, 'IHDR width: Playwright\'s default viewport');
  assert.equal(png.readUInt32BE(20), 720, 'IHDR height');
  assert.ok(png.length > 2_000 && png.length < 2_000_000, `a rendered page's size: ${png.length} bytes`);
  assert.match(r.results[0]!.text ?? '', /^<PNG image 1280x720, \d+ bytes>$/);
  const saved = await value(a, "const b = await page.screenshot({ path: '/tmp/shot.png' }); return b.length");
  const file = await agentOf(a).readFile('/tmp/shot.png');
  assert.equal(file.length, saved);
  assert.ok(file.subarray(0, 8).equals(PNG_SIGNATURE));
});

test('cookies set in one child are absent in its sibling; they stay in their own child across evals', async () => {
  await value(a, "await context.addCookies([{ name: 'who', value: 'child-a', url: 'http://127.0.0.1:8000/' }]); await page.goto('http://127.0.0.1:8000/index.html'); return await page.evaluate(() => { document.cookie = 'js=set-in-a'; return document.cookie; })");
  const inA = await value(a, 'return (await context.cookies()).map((c) => `${c.name}=${c.value}`).sort()');
  assert.deepEqual(inA, ['js=set-in-a', 'who=child-a']);
  const inB = await value(b, "await page.goto('http://127.0.0.1:8000/index.html'); return { api: await context.cookies(), doc: await page.evaluate(() => document.cookie) }");
  assert.deepEqual(inB, { api: [], doc: '' });
});

test('a page that never loads fails with TimeoutError naming page.goto; the child stays usable', async () => {
  // A server inside the guest that accepts connections and never answers; it marks a file once it listens.
  const started = await a.commands.start({ argv: ['python3', '-c', "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', 8001)); s.listen(8)\nopen('/tmp/hang-listening', 'w').close()\nc=[]\nwhile True: c.append(s.accept())"] });
  assert.ok('handle' in started, JSON.stringify(started));
  const listening = await a.commands.exec({ argv: ['sh', '-c', 'for i in $(seq 300); do [ -e /tmp/hang-listening ] && exit 0; sleep 0.1; done; exit 1'] });
  assert.equal(listening.exit_code, 0, 'the hanging server listens');
  const t0 = performance.now();
  const r = await browser(a, "await page.goto('http://127.0.0.1:8001/never')", 6_000);
  const ms = performance.now() - t0;
  assert.equal(r.ok, false);
  assert.equal(r.error?.type, 'TimeoutError', `${r.error?.type}: ${r.error?.message}`);
  assert.match(r.error?.message ?? '', /page\.goto: Timeout 5000ms exceeded/);
  assert.doesNotMatch(r.error?.message ?? '', /\u001b\[/, 'no terminal colours in the message');
  assert.ok(ms < 15_000, `answered at Playwright's timeout, not later (${ms.toFixed(0)} ms)`);
  // Still usable: the same page navigates on the next call.
  assert.equal(await value(a, "await page.goto('http://127.0.0.1:8000/index.html'); return await page.title()"), 'forkd page A');
  await a.commands.kill(started.handle);
});

/**
 * The web view in a real headless browser (Debian's chromium, driven by playwright-core) on a real
 * tree: the fixture snapshot, a branch of a child of it, a branch of a child of that branch, with a
 * live sandbox from each. The page must show the nodes, show a branch made through REST without a
 * reload, show a sandbox's info on a click, kill and branch from the page; another tenant's cookie
 * shows none of it, and without a cookie nothing is served. Screenshots go to FORKD_TEST_OUTPUT
 * (default: <tmp>/forkd-test-output/webui).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { routes } from '@forkd/api';
import { Controller, type SnapshotInfo } from '@forkd/sdk';
import { startTestDaemon, type TestDaemon } from './testing/daemon.js';

const CHROMIUM = process.env.FORKD_CHROMIUM ?? '/usr/bin/chromium';
const OUT = process.env.FORKD_TEST_OUTPUT ? path.join(process.env.FORKD_TEST_OUTPUT, 'webui') : path.join(os.tmpdir(), 'forkd-test-output', 'webui');

let d: TestDaemon;
let admin: Controller;
let alice: Controller;
let browser: Browser;
const run = crypto.randomBytes(3).toString('hex');
const made: string[] = [];
const tag = (n: string) => {
  const t = `ui-${run}-${n}`;
  made.push(t);
  return t;
};
/** The tree: fixture → a (live) ⇒ b1 → c (live) ⇒ b2 → e (live). */
const t: { a: string; c: string; e: string; b1: string; b2: string } = { a: '', c: '', e: '', b1: '', b2: '' };

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no browser at ${CHROMIUM}: scripts/setup.sh installs Debian's chromium`);
  await fs.mkdir(OUT, { recursive: true });
  d = await startTestDaemon({ tcp: true, identities: [{ identity: 'root', scope: 'admin' }, { identity: 'alice', scope: 'user' }, { identity: 'bob', scope: 'user' }] });
  admin = new Controller({ url: d.url!, token: d.tokens.root! });
  alice = new Controller({ url: d.url!, token: d.tokens.alice! });
  await admin.call('shareSnapshot', { params: { tag: d.tag } }); // alice and bob may spawn from the fixture
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const spawn = async (from: string) => (await alice.spawnSandboxes({ snapshot_tag: from, n: 1 }))[0]!.id;
  t.a = await spawn(d.tag);
  t.b1 = ((await alice.branchSandbox(t.a, { tag: tag('b1') })) as SnapshotInfo).tag;
  t.c = await spawn(t.b1);
  t.b2 = ((await alice.branchSandbox(t.c, { tag: tag('b2') })) as SnapshotInfo).tag;
  t.e = await spawn(t.b2);
});
after(async () => {
  await browser?.close();
  for (const x of made) await admin?.deleteSnapshot(x, { cascade: true, force: true }).catch(() => undefined);
  await d?.stop();
});

/** A browser context signed in as `who` the way `forkd ui` does it: a one-time code in the URL fragment. */
async function signedIn(who: Controller): Promise<{ ctx: BrowserContext; page: Page }> {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const page = await ctx.newPage();
  const code = await who.call('createUiCode');
  await page.goto(new URL(code.login_path, d.url!).toString());
  await page.waitForURL(/\/ui$/, { timeout: 15_000 });
  const cookie = (await ctx.cookies()).find((c) => c.name === 'forkd_ui');
  assert.ok(cookie?.httpOnly && cookie.sameSite === 'Strict', `cookie ${JSON.stringify(cookie)}`);
  return { ctx, page };
}

const sandboxNode = (id: string) => `g[data-sandbox="${id}"]`;
const snapshotNode = (tg: string) => `g[data-tag="${tg}"]`;

test('the page shows the forest: snapshots, the chain of branches, and the sandboxes running from each', async () => {
  const { ctx, page } = await signedIn(alice);
  try {
    for (const sel of [snapshotNode(d.tag), snapshotNode(t.b1), snapshotNode(t.b2), sandboxNode(t.a), sandboxNode(t.c), sandboxNode(t.e)]) {
      await page.waitForSelector(sel, { timeout: 15_000 });
    }
    // The branch edges start at the sandbox that was branched (dashed), one per link of the chain.
    assert.equal(await page.locator('path.edge.from-sandbox').count(), 2);
    assert.match(await page.locator(snapshotNode(t.b1)).textContent() ?? '', /branch · \d+ s old · paused \d+ ms/);
    assert.match(await page.locator(snapshotNode(t.b1)).textContent() ?? '', /mem [\d.]+ \w*B · disk/);
    assert.match(await page.locator('#summary').textContent() ?? '', /3 snapshots, 3 running sandboxes/);
    await page.screenshot({ path: path.join(OUT, 'tree.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

test('a branch made through REST appears without a reload; a click shows a sandbox; kill and branch from the page', async () => {
  const { ctx, page } = await signedIn(alice);
  try {
    await page.waitForSelector(sandboxNode(t.e), { timeout: 15_000 });
    // Live through the event stream (the page stops polling once it is open), not a refresh timer.
    await page.waitForSelector('#live.on', { timeout: 15_000 });
    await page.evaluate(() => { (window as unknown as { sameDocument: boolean }).sameDocument = true; });
    const b3 = ((await alice.branchSandbox(t.e, { tag: tag('b3') })) as SnapshotInfo).tag;
    await page.waitForSelector(snapshotNode(b3), { timeout: 20_000 });
    assert.match(await page.locator('#last-event').textContent() ?? '', /branched|snapshot_created/);
    assert.equal(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument), true, 'the page was reloaded');

    await page.click(sandboxNode(t.c));
    await page.waitForSelector(`#detail h2[data-detail="${t.c}"]`);
    const detail = await page.locator('#detail').textContent() ?? '';
    assert.match(detail, new RegExp(`snapshot${t.b1}`));
    assert.match(detail, /statusrunning/);
    assert.match(detail, /owneralice/);
    // The metrics route (GET /v1/sandboxes/:id/metrics) comes with the events branch; until the route
    // table has it, the panel says it shows the info only.
    const hasMetricsRoute = Object.values(routes).some((r) => r.method === 'GET' && (r.path as string) === '/v1/sandboxes/:id/metrics');
    const metrics = page.locator(`#detail [data-metrics="${t.c}"]`);
    if (hasMetricsRoute) assert.match(await metrics.textContent() ?? '', /mem used[\d.]+ \w*B/);
    else assert.equal(await metrics.locator('[data-metrics-state="no-route"]').count(), 1, await metrics.textContent() ?? '');
    await page.screenshot({ path: path.join(OUT, 'sandbox-detail.png'), fullPage: true });

    // Branch from the page: the new snapshot is a layer of c's snapshot, made from c.
    const before = new Set((await alice.listSnapshots()).map((s) => s.tag));
    await page.click('#detail button[data-action="branch"]');
    await page.waitForSelector('#detail .msg:has-text("Branched as")', { timeout: 60_000 });
    const fresh = (await alice.listSnapshots()).filter((s) => !before.has(s.tag));
    assert.equal(fresh.length, 1, JSON.stringify(fresh.map((s) => s.tag)));
    made.push(fresh[0]!.tag);
    assert.equal(fresh[0]!.branched_from, `sandbox:${t.c}`);
    assert.equal(fresh[0]!.parent_tag, t.b1);
    await page.waitForSelector(snapshotNode(fresh[0]!.tag));
    // Now the tree branches as well as chains: b1 holds two layers (b2 and the page's branch).
    assert.equal(await page.locator(`path.edge[data-edge^="${t.b1}>"]`).count(), 2);
    assert.match(await page.locator(snapshotNode(b3)).textContent() ?? '', /layer 3 · mem/);
    await page.screenshot({ path: path.join(OUT, 'branching.png'), fullPage: true });

    // Kill from the page (two clicks): gone from the daemon and from the page.
    await page.click('#detail button[data-action="kill"]');
    await page.click('#detail button[data-action="kill"]');
    await page.waitForSelector(sandboxNode(t.c), { state: 'detached', timeout: 20_000 });
    await page.waitForSelector(`#detail [data-killed="${t.c}"]`);
    await assert.rejects(alice.getSandbox(t.c), (e) => (e as { code?: string }).code === 'FORKD_E_SANDBOX_NOT_FOUND');
    await page.screenshot({ path: path.join(OUT, 'after-kill.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

test("another tenant's cookie shows none of it; without a cookie nothing is served", async () => {
  const { ctx, page } = await signedIn(new Controller({ url: d.url!, token: d.tokens.bob! }));
  try {
    await page.waitForSelector(snapshotNode(d.tag)); // the shared fixture, with none of alice's sandboxes
    assert.equal(await page.locator('g[data-sandbox]').count(), 0);
    assert.equal(await page.locator(snapshotNode(t.b1)).count(), 0);
    assert.match(await page.locator('#summary').textContent() ?? '', /1 snapshot, 0 running sandboxes/);
  } finally {
    await ctx.close();
  }
  const anon = await browser.newContext();
  try {
    const page = await anon.newPage();
    const r = await page.goto(new URL('/ui', d.url!).toString());
    assert.equal(r?.status(), 401);
    for (const p of ['/ui/app.js', '/v1/snapshots/tree', '/v1/sandboxes', '/v1/events', `/v1/sandboxes/${t.e}`]) {
      assert.equal((await anon.request.get(new URL(p, d.url!).toString())).status(), 401, p);
    }
    // A cookie-less mutation from a page is refused before anything is looked up.
    assert.equal((await anon.request.delete(new URL(`/v1/sandboxes/${t.e}`, d.url!).toString(), { headers: { 'x-forkd-ui': '1' } })).status(), 401);
    assert.equal((await alice.getSandbox(t.e)).status, 'running');
  } finally {
    await anon.close();
  }
});

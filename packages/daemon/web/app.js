// The web view of the tree. Everything it shows comes from the REST routes the SDK calls
// (GET /v1/snapshots/tree, /v1/snapshots, /v1/sandboxes, …), authenticated by the session cookie;
// every call that changes something carries the x-forkd-ui header (the daemon's CSRF guard).
// It stays current through the event stream (GET /v1/events) when the daemon has one, else by polling.
import { layoutForest, bytes, age, sourceSandbox } from './tree-layout.js';

const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
const state = { roots: [], snaps: {}, sbs: {}, selected: null, seen: null, fresh: new Set() };

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
  }
}

async function api(method, path, body) {
  const headers = { 'x-forkd-ui': '1' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, { method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    if (r.status === 401) notice('Your web view session ended: run `forkd ui` again.');
    throw new ApiError(r.status, data);
  }
  return data;
}

function notice(text) {
  const n = $('notice');
  n.textContent = text ?? '';
  n.hidden = !text;
}

function el(name, attrs = {}, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function h(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const k of kids) e.append(k);
  return e;
}

let loading = null;
let again = false;
/** Reloads the three lists; calls that arrive while one runs are folded into one more run. */
async function refresh() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    do {
      again = false;
      try {
        const [tree, snaps, sbs] = await Promise.all([api('GET', '/v1/snapshots/tree'), api('GET', '/v1/snapshots'), api('GET', '/v1/sandboxes')]);
        const known = state.seen;
        state.roots = tree.roots;
        state.snaps = Object.fromEntries(snaps.map((s) => [s.tag, s]));
        state.sbs = Object.fromEntries(sbs.map((s) => [s.id, s]));
        const now = new Set([...Object.keys(state.snaps), ...Object.keys(state.sbs)]);
        state.fresh = known ? new Set([...now].filter((k) => !known.has(k))) : new Set();
        state.seen = now;
        render();
        state.fresh = new Set(); // highlighted once, when they first appear
        if (!$('notice').textContent.startsWith('Your web view session')) notice(null);
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 401)) notice(`Could not load the tree: ${e.message}`);
      }
    } while (again);
  })();
  try { await loading; } finally { loading = null; }
}

function render() {
  const svg = $('tree');
  const L = layoutForest(state.roots, state.snaps);
  svg.replaceChildren();
  svg.setAttribute('width', Math.max(L.width, 300));
  svg.setAttribute('height', Math.max(L.height, 200));
  for (const e of L.edges) svg.append(el('path', { class: `edge${e.fromSandbox ? ' from-sandbox' : ''}`, d: e.path, 'data-edge': `${e.from}>${e.to}` }));
  for (const b of L.boxes) svg.append(snapshotNode(b));
  for (const p of L.pills) svg.append(sandboxNode(p));
  const nSnaps = L.boxes.length;
  const nSbs = L.pills.length;
  $('summary').textContent = `${nSnaps} snapshot${nSnaps === 1 ? '' : 's'}, ${nSbs} running sandbox${nSbs === 1 ? '' : 'es'}`;
  if (nSnaps === 0) svg.append(el('text', { x: 16, y: 30, class: 'sub' }, 'No snapshots yet.'));
}

function selectedClass(type, key) {
  return state.selected?.type === type && state.selected.key === key ? ' selected' : '';
}

function snapshotNode(b) {
  const s = state.snaps[b.tag];
  const kind = b.node.kind;
  const g = el('g', { class: `node snap kind-${kind} status-${s?.status ?? 'ready'}${selectedClass('snapshot', b.tag)}${state.fresh.has(b.tag) ? ' fresh' : ''}`, 'data-tag': b.tag, transform: `translate(${b.x},${b.y})` });
  g.append(el('title', {}, `${b.tag} (${kind})`));
  g.append(el('rect', { width: b.w, height: b.h, rx: 6 }));
  g.append(el('text', { x: 8, y: 16, class: 'title' }, clip(b.tag, 32)));
  // A layer (depth > 0) stores only what changed over its parent: its sizes are its own, not the chain's.
  const sizes = s ? `${b.depth ? `layer ${b.depth} · ` : ''}mem ${bytes(s.memory_physical_bytes)} · disk ${bytes(s.disk_physical_bytes)}` : '';
  const pause = s?.pause_ms != null ? ` · paused ${Math.round(s.pause_ms)} ms` : '';
  g.append(el('text', { x: 8, y: 33, class: 'sub' }, `${kind} · ${age(b.node.created_at_unix)} old${pause}`));
  g.append(el('text', { x: 8, y: 50, class: 'sub' }, sizes));
  g.addEventListener('click', () => select('snapshot', b.tag));
  return g;
}

function sandboxNode(p) {
  const s = state.sbs[p.id];
  const g = el('g', { class: `node sandbox${s?.status === 'killed' ? ' killed' : ''}${selectedClass('sandbox', p.id)}${state.fresh.has(p.id) ? ' fresh' : ''}`, 'data-sandbox': p.id, transform: `translate(${p.x},${p.y})` });
  g.append(el('title', {}, p.id));
  g.append(el('rect', { width: p.w, height: p.h, rx: 10 }));
  const branches = s?.branch_count ? ` · ${s.branch_count} branch${s.branch_count === 1 ? '' : 'es'}` : '';
  g.append(el('text', { x: 10, y: 14 }, `● ${p.id.slice(0, 10)}… ${s ? age(s.created_at_unix) : ''}${branches}`));
  g.addEventListener('click', (ev) => { ev.stopPropagation(); select('sandbox', p.id); });
  return g;
}

const clip = (t, n) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);

function rows(pairs) {
  return h('table', {}, ...pairs.filter(([, v]) => v !== undefined).map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v === null ? '—' : String(v)))));
}

async function select(type, key) {
  state.selected = { type, key };
  render();
  const panel = $('detail');
  panel.replaceChildren(h('p', { class: 'hint' }, 'Loading…'));
  try {
    panel.replaceChildren(...(type === 'sandbox' ? await sandboxDetail(key) : await snapshotDetail(key)));
  } catch (e) {
    panel.replaceChildren(h('p', { class: 'msg err' }, `${key}: ${e.message}`));
  }
}

async function sandboxDetail(id) {
  const s = await api('GET', `/v1/sandboxes/${encodeURIComponent(id)}`);
  const out = [h('h2', { 'data-detail': id }, id)];
  out.push(rows([
    ['status', s.status], ['snapshot', s.snapshot_tag], ['owner', s.owner], ['age', age(s.created_at_unix)],
    ['pid', s.pid], ['language', s.language], ['ready in', `${Math.round(s.ready.spawn_to_ready_ms)} ms`],
    ['branches made', s.branch_count], ['network', s.network ? s.guest_addr ?? 'yes' : 'none'],
    ['memory limit', s.memory_limit_mib === null ? null : `${s.memory_limit_mib} MiB`],
    ['expires', s.expires_at_unix_ms === null ? null : new Date(s.expires_at_unix_ms).toISOString()],
    ['workspace', s.workspace], ['metadata', Object.keys(s.metadata).length ? JSON.stringify(s.metadata) : null],
  ]));
  out.push(await metricsBlock(id));
  const msg = h('p', { class: 'msg' });
  const tagInput = h('input', { placeholder: 'tag (optional)', 'aria-label': 'branch tag' });
  const branchBtn = h('button', { type: 'button', 'data-action': 'branch', onclick: async () => {
    branchBtn.disabled = true;
    msg.className = 'msg';
    msg.textContent = 'Branching…';
    try {
      const body = tagInput.value.trim() ? { tag: tagInput.value.trim() } : {};
      const snap = await api('POST', `/v1/sandboxes/${encodeURIComponent(id)}/branch`, body);
      msg.textContent = `Branched as ${snap.tag}${snap.pause_ms != null ? ` (paused ${Math.round(snap.pause_ms)} ms)` : ''}.`;
      await refresh();
    } catch (e) {
      msg.className = 'msg err';
      msg.textContent = `Branch failed: ${e.message}`;
    } finally { branchBtn.disabled = false; }
  } }, 'Branch');
  // Two clicks: the first arms the button, so a stray click kills nothing.
  const killBtn = h('button', { type: 'button', class: 'danger', 'data-action': 'kill', onclick: async () => {
    if (!killBtn.classList.contains('armed')) {
      killBtn.classList.add('armed');
      killBtn.textContent = 'Click again to kill';
      return;
    }
    killBtn.disabled = true;
    try {
      await api('DELETE', `/v1/sandboxes/${encodeURIComponent(id)}`);
      state.selected = null;
      // Its info is gone with it: the panel keeps only the outcome.
      $('detail').replaceChildren(h('h2', {}, id), h('p', { class: 'msg', 'data-killed': id }, `Killed ${id}.`));
      await refresh();
    } catch (e) {
      msg.className = 'msg err';
      msg.textContent = `Kill failed: ${e.message}`;
      killBtn.disabled = false;
    }
  } }, 'Kill');
  if (s.status === 'running') out.push(h('div', { class: 'actions' }, tagInput, branchBtn, killBtn));
  out.push(msg);
  return out;
}

/**
 * The sandbox's metrics from GET /v1/sandboxes/:id/metrics ({ sandbox_id, samples: [...] }, the newest
 * last; the host's view nested under `host`), when the daemon offers that route. A daemon without it
 * answers 404 "no route": the panel then shows the info only and says so.
 */
async function metricsBlock(id) {
  const box = h('div', { 'data-metrics': id }, h('h2', {}, 'Metrics'));
  try {
    const m = await api('GET', `/v1/sandboxes/${encodeURIComponent(id)}/metrics`);
    const samples = Array.isArray(m?.samples) ? m.samples : [];
    const last = samples[samples.length - 1];
    if (!last) {
      box.append(h('p', { class: 'hint' }, 'No samples yet.'));
      return box;
    }
    const flat = { ...last, ...Object.fromEntries(Object.entries(last.host ?? {}).map(([k, v]) => [`host ${k}`, v])) };
    const shown = Object.entries(flat).filter(([k, v]) => k !== 'host' && k !== 'timestamp_unix_ms' && (typeof v !== 'object' || v === null));
    box.append(rows(shown.map(([k, v]) => [k.replace(/_/g, ' '), typeof v === 'number' && /mem|disk|bytes|rss/i.test(k) ? bytes(v) : typeof v === 'number' && /pct/.test(k) ? `${v.toFixed(1)} %` : v])));
    if (samples.length > 1) box.append(h('p', { class: 'hint' }, `latest of ${samples.length} samples`));
  } catch (e) {
    const missing = e.status === 404 && e.code === 'FORKD_E_NOT_FOUND' && /no route/.test(e.message);
    box.append(h('p', { class: 'hint', 'data-metrics-state': missing ? 'no-route' : 'error' }, missing ? 'This daemon has no metrics route (GET /v1/sandboxes/:id/metrics): info only.' : `Metrics unavailable: ${e.message}`));
  }
  return box;
}

async function snapshotDetail(tag) {
  const s = await api('GET', `/v1/snapshots/${encodeURIComponent(tag)}/info`);
  const from = sourceSandbox(s.branched_from);
  return [h('h2', { 'data-detail': tag }, tag), rows([
    ['status', s.status], ['made from', s.branched_from], ['parent', s.parent_tag], ['owner', s.owner + (s.shared ? ' (shared)' : '')],
    ['age', age(s.created_at_unix)], ['source paused', s.pause_ms === null ? null : `${Math.round(s.pause_ms)} ms`],
    ['memory (stored)', bytes(s.memory_physical_bytes)], ['memory (logical)', bytes(s.memory_logical_bytes)],
    ['disk (stored)', bytes(s.disk_physical_bytes)], ['this layer stores', bytes(s.layer_physical_bytes)], ['flat copy would take', bytes(s.logical_bytes)],
    ['chain depth', s.chain_depth], ['ancestors', s.ancestors.join(' → ') || null], ['dependents', s.dependents.join(', ') || null],
    ['live sandboxes', s.live_sandboxes], ['machine', `${s.vcpus} vCPU, ${s.mem_mib} MiB, ${s.accel}`], ['language', s.language],
  ]), ...(from && state.sbs[from] ? [h('p', { class: 'hint' }, `Branched from running sandbox ${from}.`)] : [])];
}

// Live updates: each event makes one reload of the lists (the page keeps no second copy of the state).
// The kinds of GET /v1/events (api/src/events.ts); the stream names each event by its kind.
const EVENT_KINDS = ['created', 'killed', 'timed_out', 'oom', 'exited', 'lost', 'branched', 'forked', 'paused', 'resumed', 'snapshot_created', 'snapshot_deleted'];
let poller = null;
function setLive(on, text) {
  const l = $('live');
  l.className = `live ${on ? 'on' : 'off'}`;
  l.textContent = text;
}
function poll() {
  if (poller) return;
  setLive(false, `refreshing every ${POLL_MS / 1000} s`);
  poller = setInterval(refresh, POLL_MS);
}
function live() {
  if (typeof EventSource === 'undefined') return poll();
  // No since: the stream starts at now (the lists just loaded cover the past); on a reconnect the
  // browser sends Last-Event-ID, so nothing in between is missed.
  const es = new EventSource('/v1/events');
  let opened = false;
  const onEvent = (m) => {
    try {
      const e = JSON.parse(m.data);
      $('last-event').textContent = `${e.kind} ${e.sandbox_id ?? ''}${e.snapshot_tag ? ` ${e.snapshot_tag}` : ''} · ${new Date(e.time_unix_ms).toLocaleTimeString()}`;
    } catch { /* a frame without JSON: refresh all the same */ }
    refresh();
  };
  for (const k of EVENT_KINDS) es.addEventListener(k, onEvent);
  es.addEventListener('open', () => {
    opened = true;
    if (poller) { clearInterval(poller); poller = null; }
    setLive(true, 'live (events)');
    refresh(); // whatever happened while the stream was down
  });
  es.addEventListener('error', () => {
    // A refused stream (no such route, or the session ended) is closed for good: fall back to polling.
    // A dropped one (the daemon restarting, a slow reader cut off) reconnects by itself.
    if (es.readyState === EventSource.CLOSED) { es.close(); poll(); }
    else if (opened) setLive(false, 'reconnecting…');
  });
}

$('refresh').addEventListener('click', () => refresh());
$('logout').addEventListener('click', async () => {
  await api('DELETE', '/v1/ui/session').catch(() => undefined);
  location.replace('/ui/login');
});
// Ages on the page move on without a reload of anything.
setInterval(() => { if (!loading) render(); }, 10_000);
await refresh();
live();

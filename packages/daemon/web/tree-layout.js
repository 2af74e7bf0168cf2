// Places the forest of snapshots (GET /v1/snapshots/tree) and the sandboxes running from each on a
// plane: each snapshot is a box with its sandboxes stacked under it; a snapshot's layers sit one row
// lower, side by side under it. Pure (no DOM), so it is tested without a browser.

export const SIZES = { boxW: 240, boxH: 62, pillH: 20, pillGap: 4, hGap: 26, vGap: 48, margin: 12 };

/** "sandbox:sb-…" (a branch or fork of that sandbox) → the sandbox id, else null. */
export function sourceSandbox(branchedFrom) {
  const m = /^sandbox:(sb-[0-9a-f]+)$/.exec(branchedFrom ?? '');
  return m ? m[1] : null;
}

/**
 * roots: TreeNode[] ({ tag, kind, created_at_unix, sandboxes: string[], children }).
 * info: { [tag]: SnapshotInfo } (for branched_from); missing entries are fine.
 * → { width, height, boxes: [{ tag, node, x, y, w, h, depth }], pills: [{ id, tag, x, y, w, h }], edges: [{ from, to, path, fromSandbox }] }
 */
export function layoutForest(roots, info = {}, S = SIZES) {
  const pillStep = S.pillH + S.pillGap;
  const blockH = (n) => S.boxH + (n.sandboxes.length ? S.pillGap + n.sandboxes.length * pillStep : 0);
  const rowH = [];
  const widths = new Map();
  const measure = (n, depth) => {
    rowH[depth] = Math.max(rowH[depth] ?? 0, blockH(n));
    const kids = n.children.reduce((w, c, i) => w + measure(c, depth + 1) + (i ? S.hGap : 0), 0);
    const w = Math.max(S.boxW, kids);
    widths.set(n, w);
    return w;
  };
  let total = 0;
  roots.forEach((r, i) => { total += measure(r, 0) + (i ? S.hGap : 0); });
  const rowY = [];
  rowH.forEach((h, d) => { rowY[d] = d === 0 ? S.margin : rowY[d - 1] + rowH[d - 1] + S.vGap; });

  const boxes = [];
  const pills = [];
  const edges = [];
  const pillOf = new Map();
  const place = (n, left, depth, parentBox) => {
    const w = widths.get(n);
    const box = { tag: n.tag, node: n, x: left + (w - S.boxW) / 2, y: rowY[depth], w: S.boxW, h: S.boxH, depth };
    boxes.push(box);
    n.sandboxes.forEach((id, i) => {
      const p = { id, tag: n.tag, x: box.x + 10, y: box.y + S.boxH + S.pillGap + i * pillStep, w: S.boxW - 20, h: S.pillH };
      pills.push(p);
      pillOf.set(id, p);
    });
    if (parentBox) {
      const src = pillOf.get(sourceSandbox(info[n.tag]?.branched_from));
      const [x1, y1] = src && src.tag === parentBox.tag ? [src.x + src.w, src.y + src.h / 2] : [parentBox.x + parentBox.w / 2, parentBox.y + blockH(parentBox.node)];
      const x2 = box.x + box.w / 2;
      const y2 = box.y;
      const my = (Math.max(y1, rowY[depth] - S.vGap) + y2) / 2;
      edges.push({ from: parentBox.tag, to: n.tag, fromSandbox: Boolean(src && src.tag === parentBox.tag), path: `M${x1},${y1} C${src ? x1 + 30 : x1},${my} ${x2},${my} ${x2},${y2}` });
    }
    let childLeft = left + (w - n.children.reduce((s, c, i) => s + widths.get(c) + (i ? S.hGap : 0), 0)) / 2;
    for (const c of n.children) {
      place(c, childLeft, depth + 1, box);
      childLeft += widths.get(c) + S.hGap;
    }
  };
  let left = S.margin;
  for (const r of roots) {
    place(r, left, 0, null);
    left += widths.get(r) + S.hGap;
  }
  const height = rowH.length ? rowY[rowH.length - 1] + rowH[rowH.length - 1] + S.margin : 0;
  return { width: total + 2 * S.margin, height, boxes, pills, edges };
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '?';
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) { n /= 1024; i++; }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)} ${UNITS[i]}`;
}

/** Age of a unix-seconds instant, as "42 s", "5 min", "3 h", "2 d". */
export function age(unixSecs, nowMs = Date.now()) {
  const s = Math.max(0, Math.round(nowMs / 1000 - unixSecs));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

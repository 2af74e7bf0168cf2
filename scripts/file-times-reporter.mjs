// A node:test reporter that writes how long each test file took, slowest first: where CI's minutes
// go. Files run one after another (--test-concurrency=1), so a file's time is from the previous
// file's last event to its own last event (its process start and before() hooks included).
// run-tests.mjs adds it beside spec, written to test-results/file-times.txt.
const QUEUEING = new Set(['test:enqueue', 'test:dequeue', 'test:watch:drained']);

export default async function* fileTimes(source) {
  const start = Date.now();
  const files = new Map();
  for await (const ev of source) {
    const file = ev.data?.file;
    if (!file || QUEUEING.has(ev.type)) continue;
    const f = files.get(file) ?? { last: 0, fail: 0 };
    f.last = Date.now();
    if (ev.type === 'test:fail' && ev.data.nesting === 0) f.fail += 1;
    files.set(file, f);
  }
  let prev = start;
  const rows = [...files].sort((a, b) => a[1].last - b[1].last).map(([file, f]) => {
    const secs = (f.last - prev) / 1000;
    prev = f.last;
    return { file: file.replace(process.cwd() + '/', ''), secs, fail: f.fail };
  }).sort((a, b) => b.secs - a.secs);
  yield `# seconds per test file, slowest first; total ${((prev - start) / 1000).toFixed(0)} s\n`;
  for (const r of rows) yield `${r.secs.toFixed(1).padStart(8)}  ${r.fail ? `FAIL(${r.fail}) ` : ''}${r.file}\n`;
}

/**
 * Merged results of a sharded pytest run, as one JUnit XML document (the format CI systems read:
 * one <testsuite> per shard, <failure>/<error>/<skipped> per test, as pytest's --junitxml writes).
 */
export type TestOutcome = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestResult {
  nodeid: string;
  outcome: TestOutcome;
  seconds: number;
  /** The assertion or exception line (pytest's reprcrash), or the skip reason. */
  message?: string;
  /** The failure's traceback as pytest shows it. */
  details?: string;
  /** Where it failed: setup, call, teardown or collect. */
  phase?: string;
  output?: string;
}

export interface ShardResult {
  shard: number;
  sandboxId: string;
  seconds: number;
  tests: TestResult[];
}

export interface Totals {
  tests: number;
  passed: number;
  failed: number;
  errors: number;
  skipped: number;
}

export function totalsOf(tests: TestResult[]): Totals {
  const count = (o: TestOutcome) => tests.filter((t) => t.outcome === o).length;
  return { tests: tests.length, passed: count('passed'), failed: count('failed'), errors: count('error'), skipped: count('skipped') };
}

// XML 1.0 forbids most control characters even escaped; test output may hold any of them.
// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

export function xmlEscape(s: string): string {
  return s.replace(INVALID_XML, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** pytest's junitxml naming: classname is the module path (dots) plus any classes, name the last part. */
export function junitNames(nodeid: string): { classname: string; name: string; file: string } {
  const parts = nodeid.split('::');
  const file = parts[0]!;
  const name = parts.length > 1 ? parts[parts.length - 1]! : file;
  const mod = file.replace(/\.py$/, '').replace(/\//g, '.');
  const classname = [mod, ...parts.slice(1, -1)].join('.');
  return { classname, name, file };
}

const secs = (s: number) => (Number.isFinite(s) ? s : 0).toFixed(3);

export function toJunitXml(shards: ShardResult[], suiteName = 'forkd test'): string {
  const all = shards.flatMap((s) => s.tests);
  const t = totalsOf(all);
  const wall = Math.max(0, ...shards.map((s) => s.seconds));
  const lines = ['<?xml version="1.0" encoding="utf-8"?>',
    `<testsuites name="${xmlEscape(suiteName)}" tests="${t.tests}" failures="${t.failed}" errors="${t.errors}" skipped="${t.skipped}" time="${secs(wall)}">`];
  for (const s of shards) {
    const st = totalsOf(s.tests);
    lines.push(`  <testsuite name="shard-${s.shard}" hostname="${xmlEscape(s.sandboxId)}" tests="${st.tests}" failures="${st.failed}" errors="${st.errors}" skipped="${st.skipped}" time="${secs(s.seconds)}">`);
    for (const r of s.tests) {
      const n = junitNames(r.nodeid);
      const open = `    <testcase classname="${xmlEscape(n.classname)}" name="${xmlEscape(n.name)}" file="${xmlEscape(n.file)}" time="${secs(r.seconds)}"`;
      const msg = xmlEscape(r.message ?? '');
      const body = xmlEscape(r.details ?? r.message ?? '');
      if (r.outcome === 'passed') lines.push(`${open}/>`);
      else if (r.outcome === 'skipped') lines.push(`${open}>`, `      <skipped type="pytest.skip" message="${msg}"/>`, '    </testcase>');
      else {
        const tagName = r.outcome === 'failed' ? 'failure' : 'error';
        lines.push(`${open}>`, `      <${tagName} message="${msg}">${body}</${tagName}>`, '    </testcase>');
      }
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}

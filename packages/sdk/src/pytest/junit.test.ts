import { test } from 'node:test';
import assert from 'node:assert/strict';
import { junitNames, toJunitXml, totalsOf, xmlEscape, type ShardResult } from './junit.js';

const shards: ShardResult[] = [
  { shard: 0, sandboxId: 'sb-a', seconds: 1.5, tests: [
    { nodeid: 'tests/test_text.py::test_slugify[Hello, World!-hello-world]', outcome: 'passed', seconds: 0.01 },
    { nodeid: 'tests/test_x.py::TestK::test_bad', outcome: 'failed', seconds: 0.2, message: "AssertionError: assert 'a<b' == \"c&d\"", details: 'E   assert 1 == 2\x1b[0m' },
  ] },
  { shard: 1, sandboxId: 'sb-b', seconds: 2.25, tests: [
    { nodeid: 'tests/test_y.py::test_skip', outcome: 'skipped', seconds: 0, message: 'not today' },
    { nodeid: 'tests/test_y.py::test_fixture', outcome: 'error', seconds: 0.1, phase: 'setup', message: 'RuntimeError: boom' },
  ] },
];

test('pytest junitxml names: module path as classname, classes appended, parameters kept in the name', () => {
  assert.deepEqual(junitNames('tests/test_x.py::TestK::test_bad'), { classname: 'tests.test_x.TestK', name: 'test_bad', file: 'tests/test_x.py' });
  assert.deepEqual(junitNames('tests/test_text.py::test_slugify[a-b]'), { classname: 'tests.test_text', name: 'test_slugify[a-b]', file: 'tests/test_text.py' });
});

test('merged XML: counts per suite and overall, failure/error/skipped elements, everything escaped', () => {
  const xml = toJunitXml(shards);
  assert.match(xml, /^<\?xml version="1.0" encoding="utf-8"\?>\n<testsuites name="forkd test" tests="4" failures="1" errors="1" skipped="1" time="2.250">/);
  assert.match(xml, /<testsuite name="shard-0" hostname="sb-a" tests="2" failures="1" errors="0" skipped="0" time="1.500">/);
  assert.match(xml, /<failure message="AssertionError: assert &apos;a&lt;b&apos; == &quot;c&amp;d&quot;">E   assert 1 == 2\uFFFD\[0m<\/failure>/);
  assert.match(xml, /<error message="RuntimeError: boom">RuntimeError: boom<\/error>/);
  assert.match(xml, /<skipped type="pytest.skip" message="not today"\/>/);
  assert.match(xml, /name="test_slugify\[Hello, World!-hello-world\]"/);
  assert.equal((xml.match(/<testcase /g) ?? []).length, 4);
  assert.ok(!/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(xml), 'no control characters XML forbids');
});

test('totals and escaping helpers', () => {
  assert.deepEqual(totalsOf(shards.flatMap((s) => s.tests)), { tests: 4, passed: 1, failed: 1, errors: 1, skipped: 1 });
  assert.equal(xmlEscape('<a href="x">&\'</a>'), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;');
});

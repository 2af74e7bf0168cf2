/**
 * The coding-agent recipe on real VMs: a small repository with a failing test is uploaded into one
 * sandbox (files API, no network), a 50 MiB untracked data directory is generated next to it, and
 * the sandbox is branched mid-task. Three children of the branch each apply a different fix and run
 * the tests: one passes, the other two fail differently; their work trees and git histories stay
 * apart; the 50 MiB is in the branch layer once, and each child's own disk overlay and copied guest
 * RAM stay far below it (read from the overlay's allocation and the QEMU's smaps).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { loadRecipe } from '../recipe/recipe.js';
import { ensureRecipeSnapshot } from '../testing/recipe-snapshot.js';
import { testEngine } from '../testing/fixture.js';
import { vmOf, type Sandbox } from './sandbox.js';
import type { ExecResultT } from '@forkd/protocol';

const engine = testEngine();
const MIB = 1024 * 1024;
const DATA_MIB = 50;
const REPO = '/work/repo';
let tag = '';
const live: Sandbox[] = [];
const branchTag = `it-coding-${crypto.randomBytes(3).toString('hex')}`;

const BUGGY = 'def mean(xs):\n    """Arithmetic mean; an empty list is a ValueError."""\n    return sum(xs) / (len(xs) + 1)\n';
const TESTS = 'import pytest\n\nfrom calc import mean\n\n\ndef test_mean():\n    assert mean([1, 2, 3, 4]) == 2.5\n\n\ndef test_mean_single():\n    assert mean([7]) == 7\n\n\ndef test_mean_empty():\n    with pytest.raises(ValueError):\n        mean([])\n';
/** Three attempts: right; forgets the empty list (ZeroDivisionError); integer division (assert 2 == 2.5). */
const FIXES = [
  { name: 'fix-right', code: 'def mean(xs):\n    if not xs:\n        raise ValueError("mean of nothing")\n    return sum(xs) / len(xs)\n' },
  { name: 'fix-no-empty-check', code: 'def mean(xs):\n    return sum(xs) / len(xs)\n' },
  { name: 'fix-floor-division', code: 'def mean(xs):\n    if not xs:\n        raise ValueError("mean of nothing")\n    return sum(xs) // len(xs)\n' },
];

before(async () => {
  ({ tag } = await ensureRecipeSnapshot(engine, 'itest-coding-agent', await loadRecipe('coding-agent')));
});
after(async () => {
  await Promise.all(live.map((s) => s.kill().catch(() => undefined)));
  await engine.removeSnapshot(branchTag, { cascade: true }).catch(() => undefined);
});

async function sh(sb: Sandbox, shell: string, timeoutMs = 120_000): Promise<ExecResultT> {
  return sb.commands.exec({ shell, timeout_ms: timeoutMs });
}
async function ok(sb: Sandbox, shell: string): Promise<string> {
  const r = await sh(sb, shell);
  assert.equal(r.exit_code, 0, `${shell}\n${r.stdout}\n${r.stderr}`);
  return r.stdout.trim();
}
async function put(sb: Sandbox, file: string, text: string): Promise<void> {
  await sb.files.write(file, [Buffer.from(text)]);
}

/** Guest pages this child copied: the anonymous part of its largest mapping (the guest RAM file, MAP_PRIVATE). */
async function copiedGuestRamBytes(pid: number): Promise<number> {
  const smaps = await fs.readFile(`/proc/${pid}/smaps`, 'utf8');
  let best = { size: 0, anon: 0 };
  for (const block of smaps.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
    const head = block.split('\n', 1)[0]!;
    if (!/ \//.test(head)) continue; // file mappings only
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(block)?.[1] ?? 0);
    if (kb('Size') > best.size) best = { size: kb('Size'), anon: kb('Anonymous') };
  }
  return best.anon * 1024;
}

test('a failing repository, branched mid-task: three fixes in three children, apart, the 50 MiB shared', async () => {
  const [parent] = await engine.spawn({ tag, n: 1 });
  live.push(parent!);
  // The workbench: every tool the recipe promises, and a C build.
  const tools = await ok(parent!, 'set -e; git --version; gcc --version | head -n 1; make --version | head -n 1; python3 -m pytest --version 2>&1; pip3 --version; python3 -m venv --without-pip /tmp/venv && /tmp/venv/bin/python -c "import sys; print(sys.prefix)"; node -e "console.log(6 * 7)"; npm --version; printf "int main(void){return 7;}\\n" > /tmp/t.c && printf "t: t.c\\n\\tgcc -o t t.c\\n" > /tmp/Makefile && make -s -C /tmp t && { /tmp/t || echo "c-exit $?"; }');
  assert.match(tools, /git version 2\./);
  assert.match(tools, /pytest 7\./);
  assert.match(tools, /\/tmp\/venv\n42\n\d+\.\d+/);
  assert.match(tools, /c-exit 7$/);

  // The task: a repository whose tests fail, uploaded through the files API, committed.
  await put(parent!, `${REPO}/calc.py`, BUGGY);
  await put(parent!, `${REPO}/test_calc.py`, TESTS);
  await put(parent!, `${REPO}/.gitignore`, 'data/\n__pycache__/\n');
  await ok(parent!, `set -e; git config --global user.email agent@forkd.test; git config --global user.name agent; cd ${REPO} && git init -q -b main && git add -A && git commit -qm "mean, with a bug"`);
  const failing = await sh(parent!, `cd ${REPO} && python3 -m pytest -q -p no:cacheprovider 2>&1`);
  assert.equal(failing.exit_code, 1, failing.stdout);
  assert.match(failing.stdout, /3 failed/);
  // The work tree's bulk: 50 MiB of incompressible data, untracked, written before the branch.
  const dataSum = await ok(parent!, `set -e; cd ${REPO} && mkdir -p data && head -c ${DATA_MIB * MIB} /dev/urandom > data/blob.bin && sync && sha256sum data/blob.bin`);

  const br = await engine.branch(parent!, { tag: branchTag, mode: 'full' });
  const layer = br.snapshot.manifest.files;
  const kids = await engine.spawn({ tag: branchTag, n: 3 });
  live.push(...kids);
  // The parent goes on with its own task, unaffected by the children.
  await put(parent!, `${REPO}/NOTES.md`, 'the parent kept working\n');

  const results = await Promise.all(kids.map(async (k, i) => {
    const fix = FIXES[i]!;
    await put(k, `${REPO}/calc.py`, fix.code);
    await ok(k, `cd ${REPO} && git checkout -q -b ${fix.name} && git commit -qam "${fix.name}"`);
    const run = await sh(k, `cd ${REPO} && python3 -m pytest -q -p no:cacheprovider 2>&1`);
    const state = await ok(k, `cd ${REPO} && git branch --format="%(refname:short)" | sort | tr "\\n" " "; echo; git status --porcelain; sha256sum data/blob.bin; ls NOTES.md 2>&1 || true`);
    const vm = vmOf(k);
    const overlay = path.join(engine.layout.overlays, `vm-${vm.id}.qcow2`);
    return { fix, run, state, diskBytes: (await fs.stat(overlay)).blocks * 512, ramBytes: await copiedGuestRamBytes(vm.pid), calc: (await ok(k, `cat ${REPO}/calc.py`)) };
  }));

  const [right, noEmpty, floor] = results;
  assert.equal(right!.run.exit_code, 0, right!.run.stdout);
  assert.match(right!.run.stdout, /3 passed/);
  assert.equal(noEmpty!.run.exit_code, 1);
  assert.match(noEmpty!.run.stdout, /1 failed, 2 passed/);
  assert.match(noEmpty!.run.stdout, /ZeroDivisionError/);
  assert.equal(floor!.run.exit_code, 1);
  assert.match(floor!.run.stdout, /1 failed, 2 passed/);
  assert.match(floor!.run.stdout, /assert 2 == 2\.5/);
  for (const [i, r] of results.entries()) {
    // Its own fix, its own branch (and only main besides), a clean tree, the data as the parent wrote it, not the parent's later file.
    assert.equal(r.calc, FIXES[i]!.code.trim());
    const [branches, ...rest] = r.state.split('\n');
    assert.equal(branches!.trim(), `${FIXES[i]!.name} main`);
    assert.equal(rest[0], dataSum, 'git status is clean and the 50 MiB is intact');
    assert.match(rest[1] ?? '', /No such file/);
  }
  assert.equal(await ok(parent!, `cat ${REPO}/calc.py`), BUGGY.trim(), 'the parent keeps its own tree');
  assert.equal(await ok(parent!, `cd ${REPO} && git branch --format="%(refname:short)"`), 'main');

  // Shared, not copied: the branch layer holds the data once; each child's own layer is small.
  const line = (n: number) => `${(n / MIB).toFixed(1)} MiB`;
  process.stderr.write(`# branch layer: disk ${line(layer.disk.physical_bytes)}, memory ${line(layer.memory.physical_bytes)} (pause ${br.pauseMs.toFixed(0)} ms)\n`);
  for (const r of results) process.stderr.write(`# ${r.fix.name}: own disk overlay ${line(r.diskBytes)}, copied guest RAM ${line(r.ramBytes)}\n`);
  assert.ok(layer.disk.physical_bytes >= DATA_MIB * MIB, `the branch's disk layer holds the data: ${line(layer.disk.physical_bytes)}`);
  for (const r of results) {
    assert.ok(r.diskBytes < 8 * MIB, `${r.fix.name}'s disk overlay ${line(r.diskBytes)}`);
    // Each child read all 50 MiB (sha256sum) from the page cache it inherited: had that been copied
    // (or re-read from disk into new pages), this would be over 50 MiB. What a child does copy is
    // its own work: a git commit and a new python3 running pytest dirty ~25-30 MiB (measured 26-29 MiB under TCG).
    assert.ok(r.ramBytes < DATA_MIB * MIB * 0.8, `${r.fix.name}'s copied guest RAM ${line(r.ramBytes)}`);
  }
});

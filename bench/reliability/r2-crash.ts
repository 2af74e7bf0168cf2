/**
 * R2: kill -9 of the daemon with live sandboxes and running workspaces; the next daemon on the
 * same state must adopt every one (same ids, interpreter state kept) and answer ping and eval.
 */
import { Controller, type WorkspaceInfo } from '@forkd/sdk';
import { startTestDaemon } from '@forkd/daemon/testing';
import { benchRunDir, mmm, type Scenario } from './common.js';

export const r2: Scenario = {
  id: 'R2',
  title: 'kill -9 of the daemon with live sandboxes and workspaces: adoption',
  vm: true,
  async run(o, out) {
    benchRunDir();
    const n = o.quick ? 4 : 20;
    const nws = 2;
    const d = await startTestDaemon({ keeperGraceSecs: 180 });
    const c = new Controller({ socketPath: d.socketPath });
    try {
      const t0 = performance.now();
      const sbs = await c.spawnSandboxes({ snapshot_tag: d.tag, n });
      const workspaces: WorkspaceInfo[] = [];
      for (let i = 0; i < nws; i++) workspaces.push(await c.createWorkspace({ name: `rel-r2-${process.pid}-${i}`, snapshot_tag: d.tag }));
      const ids = [...sbs.map((s) => s.id), ...workspaces.map((w) => w.sandbox_id)];
      // State only the live VM holds: each interpreter remembers its own number.
      await Promise.all(ids.map((id, i) => c.eval(id, { code: `r2_marker = ${i} * 7` })));
      out(`set-up: ${n} sandboxes + ${nws} workspaces running, a marker set in each interpreter (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

      await d.kill9();
      const tRestart = performance.now();
      await d.restart();
      const listeningMs = performance.now() - tRestart;
      const listed = new Set((await c.listSandboxes()).map((s) => s.id));
      const wsAfter = await Promise.all(workspaces.map((w) => c.getWorkspace(w.name).catch(() => null)));
      const callMs: number[] = [];
      let answering = 0;
      const wrong: string[] = [];
      await Promise.all(ids.map(async (id, i) => {
        const t = performance.now();
        try {
          await c.pingSandbox(id);
          const r = await c.eval(id, { code: 'r2_marker' });
          callMs.push(performance.now() - t);
          if (r.result === String(i * 7)) answering++;
          else wrong.push(`${id}: marker ${r.result} (expected ${i * 7})`);
        } catch (e) {
          wrong.push(`${id}: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`.slice(0, 200));
        }
      }));
      const allAnsweredMs = performance.now() - tRestart;
      const lost = ids.filter((id) => !listed.has(id));
      const wsLost = wsAfter.filter((w, i) => !w || w.status !== 'running' || w.sandbox_id !== workspaces[i]!.sandbox_id).length;
      out('');
      out('| figure | value | target |');
      out('|---|---|---|');
      out(`| sandboxes adopted (listed by the new daemon, same id) | ${ids.length - lost.length}/${ids.length} | ${ids.length}/${ids.length} |`);
      out(`| answering (ping, then eval returns the marker set before the crash) | ${answering}/${ids.length} | ${ids.length}/${ids.length} |`);
      out(`| records lost (sandboxes + workspaces not running as before) | ${lost.length + wsLost} | 0 |`);
      out(`| restart → listening (adoption happens before listening; includes node start) | ${listeningMs.toFixed(0)} ms | |`);
      out(`| restart → every sandbox answered ping + eval | ${allAnsweredMs.toFixed(0)} ms | |`);
      out(`| ping + eval per sandbox after adoption, min / median / max | ${mmm(callMs)} | |`);
      for (const w of wrong.slice(0, 10)) out(`  not answering: ${w}`);
      for (const id of lost.slice(0, 10)) out(`  lost: ${id}`);
      for (const w of workspaces) await c.deleteWorkspace(w.name).catch(() => undefined);
    } finally {
      await d.stop();
    }
  },
};

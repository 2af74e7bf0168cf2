/** R6: the state journal against a corrupted middle line, a torn tail and a long history (bench:journal's code). */
import { journalFigures, journalOptionsFromEnv } from './journal.js';
import type { Scenario } from './common.js';

export const r6: Scenario = {
  id: 'R6',
  title: 'journal: corrupted middle line, torn tail, long history',
  vm: false,
  async run(o, out) {
    const base = journalOptionsFromEnv();
    await journalFigures(o.quick ? { ...base, runs: 1, historyBytes: 1e8 } : base, out);
  },
};

/** npm run bench:journal: R6's journal figures alone (see reliability/journal.ts). */
import { journalFigures, journalOptionsFromEnv } from './reliability/journal.js';

await journalFigures(journalOptionsFromEnv(), (s) => process.stdout.write(`${s}\n`));

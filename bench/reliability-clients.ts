/** npm run bench:clients: R5's hostile clients alone (see reliability/clients.ts). */
import { clientsOptionsFromEnv, hostileClients } from './reliability/clients.js';

await hostileClients(clientsOptionsFromEnv(), (s) => process.stdout.write(`${s}\n`));

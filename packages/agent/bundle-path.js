// Where `npm run build` puts the guest bundle (agent.mjs, pyrepl.py, sys-helper.c).
// The image builder installs every file of this directory into the guest at /opt/forkd/.
import { fileURLToPath } from 'node:url';

export const GUEST_DIR = fileURLToPath(new URL('./dist/guest/', import.meta.url)).replace(/\/$/, '');

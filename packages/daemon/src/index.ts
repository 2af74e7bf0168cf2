export { Daemon, parseBind, type DaemonOptions } from './daemon.js';
export { HTTP_LIMITS } from './http/server.js';
export { TokenSet, MIN_TOKEN_BYTES } from './http/auth.js';
export { ensureLocalDaemon, defaultSocket, DEFAULT_IDLE_EXIT_SECS } from './launch.js';

export { Daemon, parseBind, ON_STOP, type DaemonOptions, type OnStop } from './daemon.js';
export { HTTP_LIMITS } from './http/server.js';
export { TokenSet, MIN_TOKEN_BYTES } from './http/auth.js';

export { AgentClient, type ExecOptions, type Opts as AgentCallOptions, type RunCodeOutcome } from './client.js';
export { AgentConnection, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MAX_EVENT_BYTES, type CallOptions, type CallReply, type ConnectOptions } from './connection.js';
export { GUEST_CODES_PASSED, guestError, truncateGuestText } from './guest-errors.js';

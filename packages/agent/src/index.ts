/** Library surface of the agent (for tests and tools); the guest entry point is main.ts. */
export { createAgent, findExecutable, type Agent, type AgentOptions } from './agent.js';
export { AgentServer, MAX_IN_FLIGHT } from './server.js';
export { FrameWriter } from './writer.js';
export { findAgentPort, AGENT_PORT_NAME } from './find-port.js';
export { ListenTransport } from './transport-listen.js';
export { PortTransport } from './transport-port.js';

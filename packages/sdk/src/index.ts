export { Controller, type SnapshotInfo, type SnapshotInfoDetail, type SandboxInfo, type Job, type ExecResult, type EvalResult, type ProcessInfo, type EntryInfo, type WorkspaceInfo, type SnapshotTree, type StreamCallbacks } from './controller.js';
export { resolveEndpoint, defaultSocketPath, type ConnectionOptions } from './transport.js';
export * from './errors.js';

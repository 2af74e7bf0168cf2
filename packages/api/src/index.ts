export * from './common.js';
export * from './snapshots.js';
export * from './sandboxes.js';
export * from './files.js';
export * from './workspaces.js';
export * from './routes.js';
export { openApiDocument } from './openapi.js';
export * from './egress.js';
export * from './templates.js';

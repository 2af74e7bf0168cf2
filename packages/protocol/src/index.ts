export * from './errors.js';
export * from './names.js';
export * from './limits.js';
export * from './shapes.js';
export * from './frame.js';
export * from './agent-api.js';
export * from './home.js';
export * from './version.js';

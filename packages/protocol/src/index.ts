export * from './errors.js';
export * from './names.js';
export * from './frame.js';
export * from './agent-api.js';
export * from './version.js';
export * from './home.js';

export { QmpClient, type QmpEvent, type QmpGreeting, type QmpConnectOptions } from './client.js';
export { LineFramer } from './framing.js';

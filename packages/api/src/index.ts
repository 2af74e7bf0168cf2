export * from './schemas.js';
export * from './routes.js';
export { openApiDocument } from './openapi.js';

/** Writes packages/api/openapi.json from the route table (a test fails when they drift). */
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '@forkd/api';
import { FORKD_VERSION } from '@forkd/protocol';

writeFileSync(new URL('../packages/api/openapi.json', import.meta.url), `${JSON.stringify(openApiDocument(FORKD_VERSION), null, 2)}\n`);

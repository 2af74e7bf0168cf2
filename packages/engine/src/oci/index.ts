export { pushSnapshot, pullSnapshot, packSnapshot, unpackSnapshot, hostCompat, type PushResult, type PullResult, type PullOptions, type Verification, type RegistryAccess } from './ops.js';
export { generateKeyFiles, keyIdOf, type KeyFiles } from './trust/keys.js';
export { loadTrustPolicy, defaultPolicyFile, POLICY_FILE } from './trust/policy.js';
export { parseReference, type OciReference } from './reference.js';
export { RegistryClient } from './registry.js';
export { dockerConfigCredentials, parseChallenge, type Credentials } from './auth.js';
export { OCI_FORMAT_VERSION, MEDIA, ANNOTATION, checkCompatible, type HostCompat } from './format.js';
export type { ImportResult } from './import.js';

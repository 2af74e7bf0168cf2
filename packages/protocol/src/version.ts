/** The forkd release: reported by /version, the CLI, the SDKs and the OpenAPI document. */
export const FORKD_VERSION = '0.2.0';

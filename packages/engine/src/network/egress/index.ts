export { EgressService, namespaceAddresses, type EgressServiceOptions } from './service.js';
export { DEFAULT_PROXY, type EgressConfig, type EgressProxyAddress } from './config.js';
export { renderEgressRuleset, EGRESS_TABLE, usesProxy, usesDns } from './nft-rules.js';
export { loadRuleset, listRuleset } from './apply-rules.js';
export { HARD_DENIED, PRIVATE_RANGES } from './ranges.js';

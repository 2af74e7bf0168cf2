export type { ChildNetwork, EgressPolicy } from './types.js';
export { AddressPool, type PoolSlot } from './pool/pool.js';
export { createChildNetwork, destroyChildNetwork, deleteNetns, listNetns, type Uplink } from './netns/netns.js';
export { ensureUplink, uplinkTableName } from './netns/uplink.js';
export { sweepStaleNetns } from './netns/sweep.js';
export { childNetnsName, netnsPrefix, CHILD_TAP } from './netns/names.js';
export { netnsPath } from './tools.js';
export { ChildNetworks, type NetworkConfig, type NetworkLease } from './netns/manager.js';

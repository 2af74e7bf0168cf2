export { KeeperClient, type KeeperAttachOptions } from './client.js';
export { keeperSocketPath, KEEPER_PROTOCOL, type KeeperVmT } from './protocol.js';

/**
 * Wires the egress policy into the children networks: the engine's EgressService (proxy + nft per
 * child) becomes the ChildNetworks' egress applier, so every networked child gets its policy once
 * its namespace and NAT are ready and before its guest runs (a failure fails the spawn).
 *
 * The proxy starts on first use, not at daemon start: it listens on a fixed address in the uplink
 * namespace, so a daemon that never runs a networked sandbox (most test daemons) binds nothing.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import { ForkdError, type EgressRequest } from '@forkd/protocol';
import { DEFAULT_PROXY, EgressService, runtimeDir, type ChildNetwork, type ChildNetworks, type EgressApplier } from '@forkd/engine';
import type { EgressSettings } from './egress.js';

export class LazyEgress implements EgressApplier {
  private service: Promise<EgressService> | null = null;

  constructor(
    private readonly networks: ChildNetworks,
    private readonly settings: EgressSettings,
    /** Distinguishes this daemon's control socket from other daemons' in the same run dir. */
    private readonly stateKey: string,
  ) {}

  private started(): Promise<EgressService> {
    this.service ??= (async () => {
      await this.networks.ready(); // the proxy listens in the uplink namespace: it must be set up
      const id = crypto.createHash('sha256').update(this.stateKey).digest('hex').slice(0, 12);
      return EgressService.start(
        { defaultEgress: this.settings.defaultEgress, childPools: [this.networks.pool.cidr], hostAddresses: [], allowPrivate: this.settings.allowPrivate, proxy: DEFAULT_PROXY, resolvers: this.settings.resolvers },
        { uplinkNetns: this.networks.uplink.netns, controlSocket: path.join(runtimeDir(), `egress-${id}.sock`) },
      );
    })().catch((e: unknown) => {
      this.service = null;
      throw e;
    });
    return this.service;
  }

  async applyEgress(net: ChildNetwork, request: EgressRequest): Promise<unknown> {
    return (await this.started()).applyEgress(net, request);
  }

  async prepareEgress(net: ChildNetwork, request: EgressRequest): Promise<{ ruleset: string }> {
    return (await this.started()).prepareEgress(net, request);
  }

  async removeEgress(net: ChildNetwork): Promise<unknown> {
    return this.service ? (await this.service).removeEgress(net) : false;
  }

  async stop(): Promise<void> {
    const s = this.service;
    this.service = null;
    if (s) await (await s.catch(() => null))?.stop();
  }
}

/** The network of a live sandbox with a way out, or FORKD_E_CONFLICT (an egress policy needs one). */
export function uplinkedNetwork(id: string, net: ChildNetwork | null): ChildNetwork {
  if (!net?.hostAddr) throw new ForkdError('FORKD_E_CONFLICT', `sandbox ${id} has no network: an egress policy applies to sandboxes spawned with network`, { id });
  return net;
}

/**
 * One engine's children networks: the pool, the uplink (set up once, on first use) and the
 * namespace of each child. A lease is what a VM holds and gives back when it ends.
 */
import { ForkdError, type EgressRequest } from '@forkd/protocol';
import type { ChildNetwork } from '../types.js';
import { AddressPool } from '../pool/pool.js';
import { createChildNetwork, destroyChildNetwork, type Uplink } from './netns.js';
import { ensureUplink } from './uplink.js';
import { PortForwards } from '../ports/forwarder.js';

export interface NetworkConfig {
  /** IPv4 block the children's unique addresses come from (default NETWORK_DEFAULTS.pool). */
  pool?: string;
  /** Namespace the children's veths lead to; null/absent: the host's root namespace (production only). */
  uplinkNetns?: string | null;
  /** Host address exposed ports listen on (default loopback). */
  portHost?: string;
}

export interface NetworkLease {
  readonly net: ChildNetwork;
  /** Guest ports exposed on the host (listeners made on demand, closed on release). */
  readonly ports: PortForwards;
  /** Removes the namespace and frees the address; call once QEMU has exited. Idempotent. */
  release(): Promise<void>;
}

/** The egress policy service a daemon attaches (network/egress/service.ts EgressService). */
export interface EgressApplier {
  applyEgress(net: ChildNetwork, request: EgressRequest): Promise<unknown>;
  /** For a child being set up: the proxy learns the policy; the nft ruleset is returned, loaded with the namespace. */
  prepareEgress(net: ChildNetwork, request: EgressRequest): Promise<{ ruleset: string }>;
  removeEgress(net: ChildNetwork): Promise<unknown>;
}

export class ChildNetworks {
  /** Null: networked children get the deny-all fallback (egress-hook.ts). */
  private egress: EgressApplier | null = null;

  readonly pool: AddressPool;
  readonly uplink: Uplink;
  private uplinkReady: Promise<void> | null = null;
  private readonly portHost: string;

  constructor(cfg: NetworkConfig = {}) {
    this.portHost = cfg.portHost ?? '127.0.0.1';
    this.pool = new AddressPool(cfg.pool);
    const netns = cfg.uplinkNetns ?? null;
    if (netns !== null && !/^[A-Za-z0-9_.-]{1,64}$/.test(netns)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `invalid uplink namespace name ${JSON.stringify(netns)}`);
    this.uplink = { netns, pool: this.pool };
  }

  /** The uplink's forwarding and NAT, set up once (again after a failure). */
  ready(): Promise<void> {
    this.uplinkReady ??= ensureUplink(this.uplink).catch((e: unknown) => {
      this.uplinkReady = null;
      throw e;
    });
    return this.uplinkReady;
  }

  /** From now on networked children get their policy from this service (applied before guest code runs). */
  useEgress(egress: EgressApplier | null): void {
    this.egress = egress;
  }

  /** The attached egress service, if any (re-applies policies after adoption, PUT .../network). */
  get egressService(): EgressApplier | null {
    return this.egress;
  }

  /**
   * A namespace for VM vmId; with `network`, its way out through the uplink under `egress` (the
   * daemon's default fills in what it leaves out; a failure to apply it fails the spawn).
   */
  async create(vmId: string, opts: { network: boolean; egress?: EgressRequest; tapOwner?: number }): Promise<NetworkLease> {
    if (process.getuid?.() !== 0) throw new ForkdError('FORKD_E_NOT_IMPLEMENTED', 'sandbox networking needs a daemon running as root (network namespaces, taps, nftables)');
    if (opts.network) await this.ready();
    const egress = opts.network ? this.egress : null;
    let told: ChildNetwork | null = null;
    try {
      const net = await createChildNetwork(vmId, {
        ...(opts.network ? { uplink: this.uplink } : {}),
        ...(opts.tapOwner !== undefined ? { tapOwner: opts.tapOwner } : {}),
        ...(egress ? { egress: async (n: ChildNetwork) => { told = n; return (await egress.prepareEgress(n, opts.egress ?? {})).ruleset; } } : {}),
      });
      return this.lease(net);
    } catch (e) {
      // The proxy learnt a policy for an address that goes back to the pool: forget it.
      if (told && egress) await egress.removeEgress(told).catch(() => undefined);
      throw e;
    }
  }

  /** Takes back the lease of a child a previous owner set up (adoption): its address is ours again. */
  adopt(net: ChildNetwork): NetworkLease {
    if (net.hostAddr) this.pool.reserve(net.hostAddr);
    return this.lease(net);
  }

  private lease(net: ChildNetwork): NetworkLease {
    let released: Promise<void> | null = null;
    const ports = new PortForwards(net, this.portHost);
    return {
      net,
      ports,
      release: () => (released ??= ports.close().then(async () => {
        if (net.hostAddr) await this.egress?.removeEgress(net).catch(() => undefined);
        await destroyChildNetwork(net, this.pool);
      })),
    };
  }
}

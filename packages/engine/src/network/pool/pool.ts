/**
 * The addresses networked children take on the uplink side: a configurable IPv4 block cut into
 * /31 pairs (a /16 holds 32768 children). Pair k is uplink = base+2k, child = base+2k+1; each veth
 * gets its own /31, so the uplink needs no route per child (the connected /31 is the route).
 */
import { ForkdError, NETWORK_DEFAULTS } from '@forkd/protocol';

export interface PoolSlot {
  index: number;
  /** The uplink-side end of the veth (the child's default gateway). */
  uplinkAddr: string;
  /** The child's unique address (its veth end): the guest's traffic leaves as this. */
  hostAddr: string;
}

export function parseIpv4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m || m.slice(1).some((o) => Number(o) > 255)) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `not an IPv4 address: ${JSON.stringify(s)}`);
  return m.slice(1).reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export class AddressPool {
  readonly cidr: string;
  private readonly base: number;
  readonly size: number;
  private readonly used = new Set<number>();
  private next = 0;

  constructor(cidr: string = NETWORK_DEFAULTS.pool) {
    const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
    if (!m) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `network pool must be an IPv4 CIDR like ${NETWORK_DEFAULTS.pool}; got ${JSON.stringify(cidr)}`);
    const prefix = Number(m[2]);
    const { min, max } = NETWORK_DEFAULTS.poolPrefix;
    if (prefix < min || prefix > max) throw new ForkdError('FORKD_E_OUT_OF_RANGE', `network pool prefix must be /${min} to /${max}; got /${prefix}`, { min, max, prefix });
    const addr = parseIpv4(m[1]!);
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    if ((addr & ~mask) >>> 0 !== 0) throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `network pool ${cidr} has host bits set (did you mean ${formatIpv4((addr & mask) >>> 0)}/${prefix}?)`);
    this.cidr = cidr;
    this.base = addr;
    this.size = 2 ** (32 - prefix) / 2;
  }

  get inUse(): number {
    return this.used.size;
  }

  slot(index: number): PoolSlot {
    return { index, uplinkAddr: formatIpv4(this.base + 2 * index), hostAddr: formatIpv4(this.base + 2 * index + 1) };
  }

  /** The next free pair (round robin, so a just-released pair is not reused at once). */
  allocate(): PoolSlot {
    if (this.used.size >= this.size) throw new ForkdError('FORKD_E_CAPACITY', `the network pool ${this.cidr} is exhausted (${this.size} children): widen --net-pool`, { pool: this.cidr, size: this.size });
    while (this.used.has(this.next)) this.next = (this.next + 1) % this.size;
    const index = this.next;
    this.used.add(index);
    this.next = (index + 1) % this.size;
    return this.slot(index);
  }

  /** Marks the pair holding hostAddr as taken (a child adopted after a restart). Null when it is not in this pool. */
  reserve(hostAddr: string): PoolSlot | null {
    const off = parseIpv4(hostAddr) - this.base;
    if (off < 0 || off >= 2 * this.size || off % 2 !== 1) return null;
    const index = (off - 1) / 2;
    this.used.add(index);
    return this.slot(index);
  }

  release(index: number): void {
    this.used.delete(index);
  }
}

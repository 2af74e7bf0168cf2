/**
 * One admission for everything that boots a VM or writes a RAM image: spawns, fork, branch, diff,
 * compact, snapshot creation, workspace suspend and resume. It counts VMs against the daemon's
 * caps, bounds concurrent captures, and checks the host (free memory for the VMs, free disk in the
 * snapshot store and the store's size cap for the image) before anything starts, so a request that
 * cannot fit is refused with a clear code instead of failing half-way.
 */
import { promises as fs } from 'node:fs';
import { ForkdError } from '@forkd/protocol';

const MIB = 1024 * 1024;

/**
 * Host memory a new CoW child needs at first: the QEMU process and the pages it dirties while
 * restoring. Its guest memory is mapped from the snapshot and costs only the pages it later writes.
 */
export const CHILD_START_BYTES = 64 * MIB;
/** Free disk left under the snapshot store after any write (the journal and logs live there too). */
export const DISK_RESERVE_BYTES = 256 * MIB;

export interface HostProbe {
  /** MemAvailable from /proc/meminfo. */
  memAvailableBytes(): Promise<number>;
  /** Free bytes an unprivileged writer may use on the filesystem holding dir. */
  diskFreeBytes(dir: string): Promise<number>;
}

export const linuxHost: HostProbe = {
  async memAvailableBytes() {
    const text = await fs.readFile('/proc/meminfo', 'utf8');
    const m = /^MemAvailable:\s+(\d+)\s+kB/m.exec(text);
    return m ? Number(m[1]) * 1024 : Number.POSITIVE_INFINITY;
  },
  async diskFreeBytes(dir) {
    const st = await fs.statfs(dir);
    return st.bavail * st.bsize;
  },
};

export interface AdmissionLimits {
  maxSandboxes: number;
  maxSpawnInFlight: number;
  maxConcurrentCaptures: number;
  /** Total bytes the snapshot store may hold; null: no cap but free disk. */
  storeMaxBytes: number | null;
}

export interface AdmissionSetup {
  limits: AdmissionLimits;
  host: HostProbe;
  /** The snapshot store's directory (its filesystem is the one checked for free disk). */
  storeDir: string;
  /** Bytes the snapshot store holds now. */
  storeBytes: () => Promise<number>;
  /** VMs the daemon runs now outside this admission's reservations (the registry's sandboxes and the warm pool's). */
  liveSandboxes: () => number;
  /**
   * Frees up to n VMs that only wait for work (the warm pool), preferring other tags than `tag`;
   * returns how many went. Pooled VMs count against the caps but never keep real work out.
   */
  reclaim?: (n: number, tag?: string) => number;
}

/** What a job is about to start. */
export interface Ask {
  /** For messages: "spawn", "branch", "diff", ... */
  what: string;
  /** The snapshot a spawn restores (its pooled children are reclaimed last). */
  tag?: string;
  /** Children restored from a snapshot (counted as starting spawns). */
  spawns?: number;
  /** Other VMs the job runs (a diff's child, a capture's receiver, a creation's parent). */
  vms?: number;
  /** A capture or a RAM image copy (bounded by maxConcurrentCaptures). */
  capture?: boolean;
  /** Host memory the job needs beyond the spawns' CHILD_START_BYTES each. */
  memBytes?: number;
  /** Bytes the job writes into the snapshot store. */
  diskBytes?: number;
}

/** A held admission; release it when the job's VMs are tracked elsewhere or gone. */
export interface Ticket {
  release(): void;
}

export class Admission {
  private starting = 0;
  private jobVms = 0;
  private captures = 0;
  private writingBytes = 0;

  constructor(private readonly o: AdmissionSetup) {}

  get limits(): AdmissionLimits {
    return this.o.limits;
  }

  /** A request for more VMs than the daemon ever runs or starts at once can never succeed: a 400, not "retry". */
  assertSatisfiable(n: number): void {
    const { maxSandboxes, maxSpawnInFlight } = this.o.limits;
    if (n > maxSandboxes) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `n=${n} is more than this daemon ever runs at once (max-sandboxes ${maxSandboxes})`, { n, max_sandboxes: maxSandboxes });
    }
    if (n > maxSpawnInFlight) {
      throw new ForkdError('FORKD_E_INVALID_ARGUMENT', `n=${n} is more than this daemon starts at once (${maxSpawnInFlight}); spawn in smaller batches`, { n, max_spawn_in_flight: maxSpawnInFlight });
    }
  }

  /** Whether n more VMs fit under max-sandboxes now (the warm pool asks before each fill). */
  hasRoom(n: number): boolean {
    return this.o.liveSandboxes() + this.starting + this.jobVms + n <= this.o.limits.maxSandboxes;
  }

  /** Reserves what the job asks for, or throws (400 never fits, 503/429 not now, 507 no disk) having reserved nothing. */
  async admit(ask: Ask): Promise<Ticket> {
    const spawns = ask.spawns ?? 0;
    const vms = ask.vms ?? 0;
    const capture = ask.capture ? 1 : 0;
    const diskBytes = ask.diskBytes ?? 0;
    const { maxSandboxes, maxSpawnInFlight, maxConcurrentCaptures } = this.o.limits;
    this.assertSatisfiable(spawns + vms);
    let live = this.o.liveSandboxes();
    const excess = live + this.starting + this.jobVms + spawns + vms - maxSandboxes;
    if (excess > 0 && this.o.reclaim && this.o.reclaim(excess, ask.tag) > 0) live = this.o.liveSandboxes();
    if (live + this.starting + this.jobVms + spawns + vms > maxSandboxes) {
      throw new ForkdError('FORKD_E_CAPACITY', `this daemon runs at most ${maxSandboxes} VMs (${live} sandboxes, ${this.starting} starting, ${this.jobVms} in snapshot jobs); kill some first`, { max: maxSandboxes });
    }
    if (this.starting + spawns > maxSpawnInFlight) {
      throw new ForkdError('FORKD_E_RATE_LIMITED', `at most ${maxSpawnInFlight} children may be starting at once; retry shortly`, { max: maxSpawnInFlight });
    }
    if (this.captures + capture > maxConcurrentCaptures) {
      throw new ForkdError('FORKD_E_CAPACITY', `at most ${maxConcurrentCaptures} branches run at once; retry shortly`, { max: maxConcurrentCaptures });
    }
    // Counted before the host is asked, so concurrent admissions see each other.
    this.starting += spawns;
    this.jobVms += vms;
    this.captures += capture;
    this.writingBytes += diskBytes;
    let released = false;
    const ticket: Ticket = {
      release: () => {
        if (released) return;
        released = true;
        this.starting -= spawns;
        this.jobVms -= vms;
        this.captures -= capture;
        this.writingBytes -= diskBytes;
      },
    };
    try {
      await this.checkHost(ask, spawns * CHILD_START_BYTES + (ask.memBytes ?? 0), diskBytes);
    } catch (e) {
      ticket.release();
      throw e;
    }
    return ticket;
  }

  /** Runs fn under an admission held until it settles. */
  async run<T>(ask: Ask, fn: () => Promise<T>): Promise<T> {
    const ticket = await this.admit(ask);
    try {
      return await fn();
    } finally {
      ticket.release();
    }
  }

  private async checkHost(ask: Ask, memBytes: number, diskBytes: number): Promise<void> {
    if (memBytes > 0) {
      const avail = await this.o.host.memAvailableBytes();
      if (memBytes > avail) {
        throw new ForkdError('FORKD_E_CAPACITY', `the host has ${mib(avail)} MiB of memory available; this ${ask.what} needs about ${mib(memBytes)} MiB`, { available_bytes: avail, needed_bytes: memBytes });
      }
    }
    if (diskBytes <= 0) return;
    // Other writes in flight have reserved their bytes but not written them yet.
    const pending = this.writingBytes - diskBytes;
    const free = await this.o.host.diskFreeBytes(this.o.storeDir);
    if (free - pending - diskBytes < DISK_RESERVE_BYTES) {
      throw new ForkdError('FORKD_E_INSUFFICIENT_STORAGE', `the snapshot store's disk has ${mib(free)} MiB free; this ${ask.what} writes about ${mib(diskBytes)} MiB (plus ${mib(pending)} MiB for writes in flight) and ${mib(DISK_RESERVE_BYTES)} MiB stay free`, { free_bytes: free, needed_bytes: diskBytes, reserve_bytes: DISK_RESERVE_BYTES });
    }
    const cap = this.o.limits.storeMaxBytes;
    if (cap !== null) {
      const held = await this.o.storeBytes();
      if (held + pending + diskBytes > cap) {
        throw new ForkdError('FORKD_E_INSUFFICIENT_STORAGE', `the snapshot store holds ${mib(held)} MiB (plus ${mib(pending)} MiB being written) of its ${mib(cap)} MiB cap; this ${ask.what} writes about ${mib(diskBytes)} MiB. Delete snapshots or raise --snapshot-store-max-gib`, { store_bytes: held, needed_bytes: diskBytes, cap_bytes: cap });
      }
    }
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / MIB);
}

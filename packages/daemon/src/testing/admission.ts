/** Admissions for unit tests: a fake host (memory and disk as given) and the daemon's caps unless overridden. */
import { Admission, type AdmissionLimits, type HostProbe } from '../sandboxes/admission.js';

export interface FakeHostState {
  memAvailableBytes: number;
  diskFreeBytes: number;
  storeBytes: number;
  liveSandboxes: number;
}

export function fakeHost(state: FakeHostState): HostProbe {
  return { memAvailableBytes: async () => state.memAvailableBytes, diskFreeBytes: async () => state.diskFreeBytes };
}

export function testAdmission(limits: Partial<AdmissionLimits>, state: FakeHostState, reclaim?: (n: number, tag?: string) => number): Admission {
  return new Admission({
    limits: { maxSandboxes: 256, maxSpawnInFlight: 128, maxConcurrentCaptures: 2, storeMaxBytes: null, ...limits },
    host: fakeHost(state),
    storeDir: '/nonexistent',
    storeBytes: async () => state.storeBytes,
    liveSandboxes: () => state.liveSandboxes,
    ...(reclaim ? { reclaim } : {}),
  });
}

/** An admission with a host that never runs out (caps as given). */
export function roomyAdmission(limits: Partial<AdmissionLimits> = {}): Admission {
  return testAdmission(limits, { memAvailableBytes: Number.POSITIVE_INFINITY, diskFreeBytes: Number.POSITIVE_INFINITY, storeBytes: 0, liveSandboxes: 0 });
}

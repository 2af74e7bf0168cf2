export { resolveAccel, bootProbe, type ResolveAccelOptions, type AccelVerdict, type ProbeResult, type ProbeInputs } from './probe.js';
export { kvmStatus, type KvmStatus } from './kvm.js';
export { readVerdict, writeVerdict, type CachedVerdict } from './cache.js';

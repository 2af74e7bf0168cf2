import crypto from 'node:crypto';
import { buildQemuArgs } from '../qemu/args.js';

/**
 * A fingerprint of the machine arguments that must be identical between a snapshot's parent
 * and its children (device order, memory size, vCPUs, acceleration). Per-VM paths are replaced
 * by placeholders. A snapshot whose signature differs from what this forkd would build for it
 * cannot be restored safely.
 */
export function machineSignature(accel: 'kvm' | 'tcg', memMib: number, vcpus: number): string {
  const args = buildQemuArgs({
    name: 'sig',
    accel,
    vcpus,
    memMib,
    memPath: '/M',
    memShare: false,
    disk: { path: '/D', format: 'qcow2' },
    agentSocket: '/A',
    qmpSocket: '/Q',
    console: { kind: 'null' },
    incoming: true,
  });
  return crypto.createHash('sha256').update(args.join('\0')).digest('hex').slice(0, 32);
}

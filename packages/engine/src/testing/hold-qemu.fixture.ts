/**
 * Test helper process (not a test): creates a VM dir, launches a real QEMU (paused, waiting for
 * -incoming, so it costs no CPU), prints {pid, dir} and idles until killed.
 */
import path from 'node:path';
import { createVmDir } from '../runtime/dir.js';
import { startQemu } from '../qemu/start.js';

const vmDir = await createVmDir('itest');
const { proc, qmp } = await startQemu(
  {
    name: `forkd-${vmDir.id}`,
    accel: 'tcg',
    vcpus: 1,
    memMib: 64,
    memPath: path.join(vmDir.dir, 'memory.bin'),
    memShare: false,
    agentSocket: path.join(vmDir.dir, 'agent.sock'),
    qmpSocket: path.join(vmDir.dir, 'qmp.sock'),
    console: { kind: 'null' },
    incoming: true,
  },
  { runDir: vmDir.dir },
);
qmp.close();
await vmDir.setQemuPid(proc.pid);
process.stdout.write(`${JSON.stringify({ pid: proc.pid, dir: vmDir.dir })}\n`);
setInterval(() => undefined, 1 << 30);

/** Finds the guest's agent port: the virtio-serial port named `org.forkd.agent`. */
import fs from 'node:fs';
import path from 'node:path';

export const AGENT_PORT_NAME = 'org.forkd.agent';
const SYS_PORTS = '/sys/class/virtio-ports';

export function findAgentPort(name = AGENT_PORT_NAME, sysDir = SYS_PORTS): string | null {
  let dirs: string[];
  try {
    dirs = fs.readdirSync(sysDir);
  } catch {
    return null;
  }
  for (const d of dirs.sort()) {
    try {
      if (fs.readFileSync(path.join(sysDir, d, 'name'), 'utf8').trim() === name) return `/dev/${d}`;
    } catch {
      /* port without a name */
    }
  }
  return null;
}

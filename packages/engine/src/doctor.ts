import { promises as fs, constants as fsc } from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { HomeLayout } from './home/paths.js';
import type { Platform } from './platform.js';
import type { CgroupHost } from './quota/cgroup.js';
import { toForkdError } from '@forkd/protocol';
import { JAIL_GROUP, groupId, jailMode, jailUidBase, type JailMode } from './qemu/jail.js';

const execFileP = promisify(execFile);

export interface DoctorCheck {
  name: string;
  status: 'pass' | 'warn' | 'fail';
  detail: string;
}
export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
  accel: { verdict: 'kvm' | 'tcg' | null; reason: string; probed: boolean };
}

async function which(tool: string): Promise<string | null> {
  try {
    const { stdout } = await execFileP('sh', ['-c', `command -v ${tool}`]);
    return stdout.trim() || null;
  } catch {
    return null;
  }
}

/** Host checks. The acceleration verdict comes from a real boot probe (cached per kernel). */
export async function runDoctor(layout: HomeLayout, platform: Platform, cgroups: Promise<CgroupHost>): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const tools: Array<[string, string, 'fail' | 'warn']> = [
    ['qemu-system-x86_64', 'apt-get install qemu-system-x86', 'fail'],
    ['qemu-img', 'apt-get install qemu-utils', 'fail'],
    ['setpriv', 'apt-get install util-linux', 'fail'],
    ['debootstrap', 'apt-get install debootstrap (needed to build images)', 'warn'],
    ['mkfs.ext4', 'apt-get install e2fsprogs (needed to build images)', 'warn'],
    ['zstd', 'apt-get install zstd (needed for packs)', 'warn'],
  ];
  for (const [tool, hint, sev] of tools) {
    const p = await which(tool);
    checks.push({ name: tool, status: p ? 'pass' : sev, detail: p ?? `not found: ${hint}` });
  }
  try {
    await fs.access('/bin/busybox', fsc.X_OK);
    const { stdout } = await execFileP('file', ['-L', '/bin/busybox']).catch(() => ({ stdout: 'static' }));
    checks.push({ name: 'busybox (initramfs)', status: /static/.test(stdout) ? 'pass' : 'warn', detail: /static/.test(stdout) ? '/bin/busybox (static)' : '/bin/busybox is not static: apt-get install busybox-static' });
  } catch {
    checks.push({ name: 'busybox (initramfs)', status: 'fail', detail: 'apt-get install busybox-static' });
  }
  let kvmDetail = 'absent';
  try {
    const fh = await fs.open('/dev/kvm', fsc.O_RDWR);
    await fh.close();
    const mods = (await fs.readdir('/sys/module')).filter((m) => /^kvm_/.test(m));
    kvmDetail = `opens (modules: ${mods.join(', ') || 'kvm'}); usable only if a real boot succeeds`;
  } catch (e) {
    kvmDetail = `cannot open: ${(e as Error).message}`;
  }
  checks.push({ name: '/dev/kvm', status: 'pass', detail: kvmDetail });
  let accel: DoctorReport['accel'] = { verdict: null, reason: '', probed: false };
  try {
    const env = await platform.resolve();
    checks.push({ name: 'qemu version', status: 'pass', detail: env.qemuVersion });
    checks.push({ name: 'guest kernel', status: 'pass', detail: `${env.kernel.path} (${env.kernel.version})` });
    checks.push({ name: 'initramfs', status: 'pass', detail: env.initramfs.path });
    checks.push({ name: 'acceleration', status: env.accel === 'kvm' ? 'pass' : 'warn', detail: `${env.accel}: ${env.accelReason}` });
    accel = { verdict: env.accel, reason: env.accelReason, probed: env.accelProbed };
  } catch (e) {
    const fe = toForkdError(e);
    checks.push({ name: 'platform', status: 'fail', detail: `${fe.code}: ${fe.message}` });
  }
  checks.push(await cgroupCheck(cgroups));
  checks.push(await jailCheck());
  try {
    await fs.mkdir(layout.root, { recursive: true });
    const st = await fs.statfs(layout.root);
    const free = st.bavail * st.bsize;
    checks.push({ name: 'data dir', status: free > 5 * 2 ** 30 ? 'pass' : 'warn', detail: `${layout.root} (${(free / 2 ** 30).toFixed(1)} GiB free)` });
  } catch (e) {
    checks.push({ name: 'data dir', status: 'fail', detail: `${layout.root}: ${(e as Error).message}` });
  }
  return { ok: checks.every((c) => c.status !== 'fail'), checks, accel };
}

/** Which cgroup hierarchy per-sandbox limits use, and which limits it can enforce. */
async function cgroupCheck(hostP: Promise<CgroupHost>): Promise<DoctorCheck> {
  try {
    const host = await hostP;
    if (host.version === null) return { name: 'cgroups', status: 'warn', detail: `${host.note}: spawns asking for memory, CPU, pids or I/O limits fail (FORKD_E_QUOTA_UNAVAILABLE)` };
    const missing = host.note ? ` (${host.note})` : '';
    return { name: 'cgroups', status: host.controllers.length === 4 ? 'pass' : 'warn', detail: `v${host.version} at ${host.base}: ${host.controllers.join(', ')}${missing}` };
  } catch (e) {
    return { name: 'cgroups', status: 'warn', detail: `detection failed: ${(e as Error).message}` };
  }
}

/** The jail (qemu/jail.ts): its group, the uid range, setpriv, and whether this kernel has seccomp filters. */
async function jailCheck(): Promise<DoctorCheck> {
  let mode: JailMode;
  try {
    mode = jailMode();
  } catch (e) {
    return { name: 'jail', status: 'fail', detail: (e as Error).message };
  }
  if (mode === 'off') return { name: 'jail', status: 'warn', detail: 'FORKD_JAIL=off: QEMU runs as the daemon user, without seccomp or a mount view' };
  const seccomp = await fs.readFile('/proc/self/status', 'utf8').then((t) => /^Seccomp:/m.test(t), () => false);
  const setpriv = await which('setpriv');
  if (!seccomp || !setpriv) return { name: 'jail', status: 'fail', detail: `${!seccomp ? 'this kernel has no seccomp (CONFIG_SECCOMP_FILTER)' : ''}${!setpriv ? ' setpriv missing: apt-get install util-linux' : ''}`.trim() };
  if (mode === 'seccomp') return { name: 'jail', status: 'warn', detail: 'not root: QEMU runs as this user with no_new_privs and seccomp, without its own uid or mount view' };
  const gid = await groupId(JAIL_GROUP);
  if (gid === null) return { name: 'jail', status: 'fail', detail: `group ${JAIL_GROUP} missing: run scripts/setup.sh (groupadd --system ${JAIL_GROUP})` };
  let base: number;
  try {
    base = jailUidBase();
  } catch (e) {
    return { name: 'jail', status: 'fail', detail: (e as Error).message };
  }
  return { name: 'jail', status: 'pass', detail: `QEMU as uids ${base}..${base + 2 ** 24 - 1} (one per VM), group ${JAIL_GROUP} (${gid}), no_new_privs, no capabilities, seccomp (-sandbox spawn=deny), own mount view` };
}

/** Marker the probe init prints on the serial console once it runs (modules loaded). */
export const PROBE_MARKER = 'FORKD-PROBE-OK';
/** Prefix of every fatal message from the initramfs' /init. */
export const INIT_ERROR_PREFIX = 'FORKD-INIT-ERROR:';

/** Busybox applets the /init script uses; each gets a /bin symlink in the initramfs. */
export const INIT_APPLETS = ['sh', 'mount', 'umount', 'insmod', 'cat', 'sleep', 'switch_root', 'poweroff', 'echo', 'mkdir', 'ip'] as const;

/** The guest's static address, set by /init (kernel state survives switch_root): every child keeps it. */
export interface InitNetwork {
  ifname: string;
  addr: string;
  prefixLen: number;
  gateway: string;
}

/**
 * /init of the initramfs (busybox sh). Loads the virtio modules in dependency order, then either
 * answers the acceleration probe (kernel argument forkd.probe=1) or mounts /dev/vda as the root
 * and hands over to /.forkd/init (OCI images) or /sbin/forkd-init. Any failure is printed on the console and powers off, so
 * QEMU exits (-no-reboot) instead of hanging.
 */
export function initScript(moduleNames: string[], net?: InitNetwork): string {
  for (const m of moduleNames) if (!/^[A-Za-z0-9_]+$/.test(m)) throw new Error(`bad module name ${m}`);
  if (net && !(/^[a-z0-9]{1,15}$/.test(net.ifname) && /^[0-9.]+$/.test(net.addr) && /^[0-9.]+$/.test(net.gateway) && Number.isInteger(net.prefixLen))) throw new Error('bad guest network');
  // No udev here: the interface appears when virtio_net binds (synchronous with insmod, waited for anyway).
  const netSetup = net
    ? `i=0
while [ ! -e /sys/class/net/${net.ifname} ]; do
  i=$((i + 1))
  [ $i -gt 100 ] && fail "no network interface ${net.ifname} after 5 s"
  sleep 0.05
done
ip link set lo up
ip addr add ${net.addr}/${net.prefixLen} dev ${net.ifname} || fail "cannot set the guest address"
ip link set ${net.ifname} up || fail "cannot bring ${net.ifname} up"
ip route add default via ${net.gateway} dev ${net.ifname} || fail "cannot set the default route"
`
    : '';
  return `#!/bin/busybox sh
export PATH=/bin
/bin/busybox mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
fail() { echo "${INIT_ERROR_PREFIX} $*"; poweroff -f; sleep 5; exit 1; }
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in ${moduleNames.join(' ')}; do
  insmod /lib/modules/$m.ko || echo "${INIT_ERROR_PREFIX} insmod $m failed"
done
case " $(cat /proc/cmdline) " in
  *" forkd.probe=1 "*) echo ${PROBE_MARKER}; poweroff -f; sleep 5; exit 0 ;;
esac
${netSetup}i=0
while [ ! -b /dev/vda ]; do
  i=$((i + 1))
  [ $i -gt 200 ] && fail "no root disk (/dev/vda) after 10 s"
  sleep 0.05
done
mount -t ext4 -o rw,noatime /dev/vda /newroot || fail "cannot mount /dev/vda (ext4) on /newroot"
# An image made from an OCI image brings the agent's own runtime at /.forkd; a Debian image has /sbin/forkd-init.
next=/sbin/forkd-init
[ -x /newroot/.forkd/init ] && next=/.forkd/init
[ -x /newroot$next ] || fail "the root disk has no executable /sbin/forkd-init or /.forkd/init"
umount /proc /sys
mount --move /dev /newroot/dev || fail "cannot move /dev into the new root (does it have /dev?)"
exec switch_root /newroot $next
fail "switch_root failed"
`;
}

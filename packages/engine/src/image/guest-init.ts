import { GUEST_NETWORK } from '@forkd/protocol';

/**
 * /sbin/forkd-init: PID 1 after the initramfs switches root. Mounts the basics and runs the
 * agent under tini (which reaps orphaned processes). Kept tiny: it runs once, in the parent.
 */
export const GUEST_INIT_SCRIPT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
hostname forkd
ip link set lo up 2>/dev/null
export HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
cd /root
exec /usr/bin/tini -s -- /usr/bin/node --max-semi-space-size=1 --no-lazy-feedback-allocation /opt/forkd/agent.mjs
`;

export const GUEST_HOSTS = '127.0.0.1 localhost\n127.0.1.1 forkd\n::1 localhost ip6-localhost ip6-loopback\n';

/**
 * /etc/resolv.conf, in the image so the parent and every child restored from it have it. Short
 * timeouts: a child denied names gets its queries refused (ICMP), and the forwarder answers a
 * refused name with NXDOMAIN at once, so nothing waits on the glibc defaults (5 s x 2).
 */
export const GUEST_RESOLV_CONF = `# written by forkd: DNS goes to the child's egress forwarder (when its policy allows names)\nnameserver ${GUEST_NETWORK.nameserver}\noptions timeout:2 attempts:2\n`;

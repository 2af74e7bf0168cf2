#!/bin/bash
# What wakes an idle guest kernel and its QEMU, without forkd's image or agent: the host's Debian
# cloud kernel with a busybox initramfs under the same microvm/TCG flags, idle 30 s, then 20 s
# measured (QEMU per-thread CPU ticks and voluntary context switches; guest /proc/interrupts),
# then 10 s of guest ftrace (expired timers, local timer interrupts). Boots a VM: run under the lock.
#   flock /tmp/forkd-vm.lock bench/idle/kernel-only.sh LABEL "EXTRA KERNEL ARGS"
set -euo pipefail
L=$1; X=${2:-}
W=$(mktemp -d /tmp/forkd-idle-kernel.XXXXXX); trap 'rm -rf "$W"' EXIT
KERNEL=$(ls /boot/vmlinuz-*cloud-amd64 | tail -1)
mkdir -p "$W/root/bin" && cp /bin/busybox "$W/root/bin/"
cat > "$W/root/init" <<'INIT'
#!/bin/busybox sh
B=/bin/busybox; T=/sys/kernel/tracing
$B mkdir -p /proc /sys /dev; $B mount -t proc proc /proc; $B mount -t sysfs sys /sys; $B mount -t devtmpfs dev /dev
$B mount -t tracefs nodev $T
echo READY; $B sleep 30
echo ==INT; $B grep LOC /proc/interrupts; $B sleep 20; echo ==INT2; $B grep LOC /proc/interrupts
for e in timer/hrtimer_expire_entry timer/timer_expire_entry irq_vectors/local_timer_entry; do echo 1 > $T/events/$e/enable; done
$B sleep 10; echo 0 > $T/tracing_on; echo ==TRACE
$B grep -o 'function=[^ ]*\|local_timer_entry' $T/trace | $B sort | $B uniq -c | $B sort -rn | $B head -12
$B sleep 100000
INIT
chmod +x "$W/root/init"; (cd "$W/root" && find . | cpio -o -H newc 2>/dev/null | gzip > ../initrd.gz)
qemu-system-x86_64 -M microvm,x-option-roms=off,rtc=on -accel tcg -cpu max -smp 1 -m 256M -nodefaults -no-user-config -no-reboot -nographic \
  -kernel "$KERNEL" -initrd "$W/initrd.gz" -append "console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=2000000 lpj=4000000 norandmaps $X" \
  -chardev file,id=console,path="$W/out.log" -serial chardev:console &
P=$!
for _ in $(seq 120); do grep -q READY "$W/out.log" 2>/dev/null && break; sleep 0.5; done
sleep 30
snap() { for t in /proc/$P/task/*; do echo "$(tr ' ' _ < $t/comm) $(awk '{print $14+$15}' $t/stat) $(awk '/^voluntary/{print $2}' $t/status)"; done; }
snap > "$W/a"; sleep 20; snap > "$W/b"; sleep 14
kill $P; wait $P 2>/dev/null || true
echo "== $L (kernel args: $X)"
paste "$W/a" "$W/b" | awk '{printf "  thread %d: cpu %d ticks in 20 s, %.1f wake-ups/s\n", NR, $5-$2, ($6-$3)/20}'
awk '/==INT$/{getline; a=$2} /==INT2/{getline; printf "  guest local timer interrupts %.1f/s\n", ($2-a)/20}' "$W/out.log"
sed -n '/==TRACE/,$p' "$W/out.log" | sed 's/^/  10 s trace: /'

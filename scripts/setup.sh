#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: apt packages, npm ci, build.
# docker-registry and apache2-utils (htpasswd) are for the OCI tests: they start a registry on loopback.
# Every step is skipped when already satisfied, so `npm test` and `npm run quickstart` can run it each time.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql-client: psql, the host-side client of the postgres-fixture recipe's tests and benchmark.
# docker-registry, apache2-utils (htpasswd): the loopback OCI registry of the OCI tests and bench:hub.
# chromium, fonts-dejavu-core: the headless browser (driven by playwright-core) of the web view's test.
# patchelf, attr (setfattr): `forkd image from-oci` relinks the agent's runtime and keeps layers' xattrs.
APT_PACKAGES=(qemu-system-x86 qemu-utils linux-image-cloud-amd64 debootstrap e2fsprogs zstd util-linux busybox-static gcc libc6-dev iproute2 nftables curl docker-registry apache2-utils postgresql-client patchelf attr chromium fonts-dejavu-core)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# The jail's group: every QEMU runs with its own uid (from a range, no passwd entry) and this group,
# which may read snapshot files (0640 root:forkd-vm) and write none. The user of the same name is
# the range's anchor, so `forkd doctor` and ps show a name.
if [ "$(id -u)" -eq 0 ] && ! getent group forkd-vm >/dev/null; then
  echo "setup: adding system group and user forkd-vm" >&2
  groupadd --system forkd-vm
fi
if [ "$(id -u)" -eq 0 ] && ! getent passwd forkd-vm >/dev/null; then
  useradd --system --gid forkd-vm --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin forkd-vm
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.forkd-lock-sha
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

# Build when any source is newer than the last build.
if [ ! -f packages/cli/dist/index.js ] || [ ! -f packages/agent/dist/guest/agent.mjs ] || \
   [ -n "$(find packages/*/src packages/agent/build.mjs -newer packages/cli/dist/index.js -print -quit 2>/dev/null)" ]; then
  echo "setup: build" >&2
  npm run -s build >&2
  touch packages/cli/dist/index.js
fi

#!/usr/bin/env bash
# Installs QEMU 11.x and libvirt 12.x from Debian trixie-backports into a Debian trixie chroot
# inside the clone (.cache/trixie by default, MRAM_TRIXIE_ROOT to override), idempotently; the
# host keeps its own QEMU 10. Run programs in it with scripts/trixie (a private mount namespace
# per call, so no bind mount outlives its command and removing the clone is always safe).
# The mirror is taken from the machine's apt sources, so no host name lives in this repo.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=${MRAM_TRIXIE_ROOT:-$here/.cache/trixie}
packages="qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients gzip bzip2 xz-utils lzop zstd"

if [ -f "$root/.mram-ready" ]; then
  echo "install-qemu11: $("$here/scripts/trixie" qemu-system-x86_64 --version | head -n1) in $root"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "install-qemu11: must run as root" >&2; exit 1; }

# First deb URI of a plain Debian suite (not -security) in the machine's sources, deb822 or one-line.
mirror=$(
  { { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } | awk '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i ~ /^(bookworm|trixie)(-updates)?$/ && u != "") {print u; exit}}'
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } | awk '
      $1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^(http|https|file):/) {u=$i; s=$(i+1); if (s ~ /^(bookworm|trixie)(-updates)?$/) {print u; exit}}}'
  } | head -n1 || true)
[ -n "$mirror" ] || { echo "install-qemu11: no Debian apt source found to take the mirror from" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
keyring=/usr/share/keyrings/debian-archive-trixie-stable.gpg
[ -f "$keyring" ] || keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ ! -x "$root/usr/bin/apt-get" ]; then
  rm -rf --one-file-system "$root"; mkdir -p "$root"
  echo "install-qemu11: debootstrap trixie (minbase) into $root"
  debootstrap --variant=minbase --keyring="$keyring" trixie "$root" "$mirror" >"$root.debootstrap.log" 2>&1 \
    || { tail -n 20 "$root.debootstrap.log" >&2; exit 1; }
fi
printf 'deb %s trixie main\ndeb %s trixie-backports main\n' "$mirror" "$mirror" > "$root/etc/apt/sources.list"
# No daemon starts inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
MRAM_TRIXIE_ROOT=$root "$here/scripts/trixie" apt-get update -qq >/dev/null
# shellcheck disable=SC2086
MRAM_TRIXIE_ROOT=$root "$here/scripts/trixie" apt-get install -y -qq --no-install-recommends -t trixie-backports $packages >/dev/null
mkdir -p "$root/etc/libvirt"
cat > "$root/etc/libvirt/qemu.conf" <<'CONF'
user = "root"
group = "root"
security_driver = "none"
stdio_handler = "file"
namespaces = [ ]
CONF
touch "$root/.mram-ready"
echo "install-qemu11: $("$here/scripts/trixie" qemu-system-x86_64 --version | head -n1), $("$here/scripts/trixie" libvirtd --version) in $root"

#!/usr/bin/env bash
# Installs libvirt 11.x (bookworm-backports) on the host, plus the compressors libvirt uses for
# save images (gzip bzip2 xz lzop zstd). Idempotent: does nothing when all are present.
# Needs the backports list that scripts/install-qemu.sh writes; run that first.
set -euo pipefail

need_version=11.2
have_libvirt() {
  command -v virsh >/dev/null 2>&1 && [ -x /usr/sbin/libvirtd ] || return 1
  local v
  v=$(/usr/sbin/libvirtd --version | sed -n 's/.* \([0-9]*\.[0-9]*\)\.[0-9]*$/\1/p')
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$need_version" "$v" | sort -V | head -n1)" = "$need_version" ]
}
have_tools() {
  for p in gzip bzip2 xz lzop zstd; do command -v "$p" >/dev/null 2>&1 || return 1; done
}

if have_libvirt && have_tools; then
  echo "install-libvirt: $(/usr/sbin/libvirtd --version) and the compressors already present"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "install-libvirt: must run as root (apt-get)" >&2; exit 1; }
list=/etc/apt/sources.list.d/mram-bookworm-backports.list
[ -f "$list" ] || { echo "install-libvirt: $list missing (run scripts/install-qemu.sh first)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends gzip bzip2 xz-utils lzop zstd >/dev/null
# The packages' postinst may try to start the daemon; the tests start their own, so stop any service.
apt-get install -y -qq -t bookworm-backports --no-install-recommends \
  libvirt-daemon-driver-qemu libvirt-clients libvirt-daemon >/dev/null
have_libvirt || { echo "install-libvirt: installed libvirt is older than $need_version" >&2; exit 1; }
echo "install-libvirt: $(/usr/sbin/libvirtd --version)"

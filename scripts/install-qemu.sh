#!/usr/bin/env bash
# Installs qemu-system-x86 >= 9.0 from Debian's bookworm-backports suite.
# The mirror is taken from the machine's own apt sources, so no host name lives in this repo.
set -euo pipefail

need_version=9.0
have_qemu() {
  command -v qemu-system-x86_64 >/dev/null 2>&1 || return 1
  local v
  v=$(qemu-system-x86_64 --version | sed -n 's/^QEMU emulator version \([0-9]*\.[0-9]*\).*/\1/p')
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$need_version" "$v" | sort -V | head -n1)" = "$need_version" ]
}

if have_qemu; then
  echo "install-qemu: $(qemu-system-x86_64 --version | head -n1) already present"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "install-qemu: must run as root (apt-get)" >&2; exit 1; }

# First deb URI of a bookworm suite in the existing sources (deb822 or one-line format).
mirror=$(
  { { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } | awk '
      /^URIs:/ {u=$2} /^Suites:/ {for (i=2;i<=NF;i++) if ($i ~ /^bookworm(-updates)?$/ && u != "") {print u; exit}}'
    { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } | awk '
      $1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^(http|https|file):/) {u=$i; s=$(i+1); if (s ~ /^bookworm(-updates)?$/) {print u; exit}}}'
  } | head -n1 || true)
[ -n "$mirror" ] || { echo "install-qemu: no bookworm apt source found to derive the backports mirror from" >&2; exit 1; }

list=/etc/apt/sources.list.d/mram-bookworm-backports.list
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $mirror bookworm-backports main" > "$list"
echo "install-qemu: using bookworm-backports from the existing mirror"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq -o Dir::Etc::sourcelist="$list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >/dev/null
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq -t bookworm-backports --no-install-recommends qemu-system-x86 qemu-utils util-linux >/dev/null
have_qemu || { echo "install-qemu: installed QEMU is older than $need_version" >&2; exit 1; }
echo "install-qemu: $(qemu-system-x86_64 --version | head -n1)"

#!/usr/bin/env bash
# Installs the Debian packages given as arguments when any is missing (needs root; without root it
# names what is missing and fails). Used by the test and run scripts so a fresh Debian 12 machine
# needs nothing installed by hand.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "epmd-ng: missing Debian packages: ${missing[*]} (run as root to install them automatically)" >&2
  exit 1
fi
echo "epmd-ng: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
lists=(/var/lib/apt/lists/*_Packages)
if [ ! -e "${lists[0]}" ] || [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin +1440 -print -quit)" ]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
fi
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

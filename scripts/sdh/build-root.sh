#!/usr/bin/env bash
# Makes sure the host tools (systemd-nspawn, mmdebstrap) are installed and the cached Debian root
# for the current recipe exists, building it once if not. Prints the root's path on stdout; all
# progress goes to stderr. Idempotent and safe to run in parallel (builds are serialised with
# flock). Also prunes roots of older recipes that no container is using.
#
# Usage: [SDH_PACKAGES=...] build-root.sh        (settings: see lib.sh)
#        build-root.sh --fresh                   the fresh root instead (sdh_fresh_root_dir; fresh.sh)
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# mmdebstrap's customize hook calls back into this script (see sdh_mmdebstrap in lib.sh).
if [[ ${1:-} == --customize ]]; then
  sdh_customize_root "$2" "$3"
  exit
fi

sdh_require_root

# Succeeds when the host has no apt package lists or none refreshed in the last day.
apt_lists_stale() {
  ! find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null | grep -q .
}

missing_host_packages() {
  local pair
  for pair in $SDH_HOST_TOOLS; do
    command -v "${pair%%:*}" >/dev/null || echo "${pair#*:}"
  done
}

# Installs what is missing. --no-install-recommends matters: systemd-container recommends
# libnss-mymachines, which would add 'mymachines' to the host's /etc/nsswitch.conf.
install_host_tools() {
  local missing t0
  missing=$(missing_host_packages)
  [[ -n $missing ]] || return 0
  t0=$(sdh_clock)
  export DEBIAN_FRONTEND=noninteractive
  if apt_lists_stale; then
    sdh_log "updating the host's apt lists"
    apt-get -o DPkg::Lock::Timeout=600 update >&2 ||
      sdh_log "warning: apt-get update failed; trying the install anyway"
  fi
  # shellcheck disable=SC2086
  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing >&2
  missing=$(missing_host_packages)
  [[ -z $missing ]] || sdh_die "host packages still missing after apt-get install: $missing"
  sdh_log "host tools installed in $(sdh_since "$t0") s"
}

# Succeeds when anything is mounted at or below directory $1 (e.g. an interrupted build).
has_mounts() {
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# Stamp file whose mtime says when a root was last booted (boot.sh touches it).
stamp_of() { echo "$1.used"; }

remove_root() {
  if has_mounts "$1"; then
    sdh_log "keeping $1: something is mounted under it"
    return 0
  fi
  rm -rf --one-file-system -- "$1" "$(stamp_of "$1")" && sdh_log "pruned $1"
}

# Removes leftovers of interrupted builds, roots of other recipes, and all but the most recently
# used SDH_KEEP_VARIANTS roots of the current recipe. Never a root a running container uses.
# $1 is the current root, $2 the path prefix of its kind ($SDH_ROOTS/bookworm-, .../fresh-bookworm-).
# The caller holds the build lock exclusively, so no build or boot is half-way.
prune_roots() {
  local current=$1 prefix=$2 recipe live d key stamp kept=0
  recipe=${current#"$prefix"}
  recipe=${recipe%-*}
  live=$(sdh_live_roots)
  for d in "$SDH_ROOTS"/.build-*; do
    [[ -d $d ]] && remove_root "$d"
  done
  # Most recently used first.
  while read -r d; do
    [[ -n $d && -d $d && $d != "$current" ]] || continue
    if grep -qxF -- "$d" <<<"$live"; then
      continue
    fi
    key=${d#"$prefix"}
    if [[ ${key%-*} == "$recipe" ]] && ((++kept < SDH_KEEP_VARIANTS)); then
      continue
    fi
    remove_root "$d"
  done < <(for d in "$prefix"*; do
    [[ -d $d ]] || continue
    stamp=$(stamp_of "$d")
    [[ -e $stamp ]] || stamp=$d
    echo "$(stat -c %Y "$stamp") $d"
  done | sort -rn | cut -d' ' -f2-)
}

# build_root ROOT WHAT CMD...: builds ROOT with CMD, which is given the temporary directory to
# build in as its first argument; WHAT describes the content for the log.
build_root() {
  local root=$1 what=$2 tmp t0
  shift 2
  tmp=$SDH_ROOTS/.build-${root##*/}-$$
  mkdir -p "$SDH_ROOTS"
  t0=$(sdh_clock)
  sdh_log "building the root $root ($what; sources: $(sdh_sources | paste -sd';' -))"
  if ! "$1" "$tmp" "${@:2}" >&2 || ! sdh_finish_root "$tmp"; then
    [[ -d $tmp ]] && remove_root "$tmp"
    sdh_die "building the root failed (see mmdebstrap's output above)"
  fi
  mv -T -- "$tmp" "$root"
  sdh_log "root built in $(sdh_since "$t0") s: $root ($(du -sh --one-file-system "$root" | cut -f1))"
}

main() {
  local key root prefix
  local -a build
  if [[ -n $(missing_host_packages) ]]; then
    sdh_lock_build || sdh_die "timed out waiting for the build lock"
    install_host_tools
    sdh_unlock_build
  fi
  if [[ ${1:-} == --fresh ]]; then
    root=$(sdh_fresh_root_dir)
    prefix=$SDH_ROOTS/fresh-$SDH_SUITE-
    build=("minbase only" sdh_debootstrap)
  else
    key=$(sdh_cache_key)
    root=$(sdh_root_dir "$key")
    prefix=$SDH_ROOTS/$SDH_SUITE-
    build=("packages: $(sdh_packages | paste -sd' ' -)" sdh_mmdebstrap "$key")
  fi
  if [[ -d $root ]]; then
    # Cached. Prune opportunistically, but never wait for a running build to do so.
    if sdh_lock_build -n; then
      prune_roots "$root" "$prefix"
      sdh_unlock_build
    fi
  else
    sdh_lock_build || sdh_die "timed out waiting for the build lock"
    [[ -d $root ]] || build_root "$root" "${build[@]}"
    prune_roots "$root" "$prefix"
    sdh_unlock_build
  fi
  echo "$root"
}

main "$@"

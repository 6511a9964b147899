# shellcheck shell=bash
# sdh ("systemd harness"): boots Debian 12's real systemd 252 as PID 1 of a systemd-nspawn
# container, so epmd-ng's units, services and packages can be tested on hosts whose PID 1 is not
# systemd. This file is sourced by the other scripts; it holds the settings, the root's cache key
# and the shared functions. It starts nothing by itself.
#
# Settings (environment variables):
#   SDH_NAME      container name: letters, digits and '-', at most 48 characters (default: sdh).
#                 Several containers may run at once under different names.
#   SDH_HOME      cache and state directory (default: /var/cache/epmd-ng-sdh). Holds roots/ (the
#                 built Debian roots, one per cache key), state/ (one directory per running
#                 container), share/ (the default per-container share dirs) and locks/.
#                 Never `rm -rf` it while a container or a build is running; if you must, use
#                 `rm -rf --one-file-system` (a build has the host's /proc and /sys mounted in it).
#   SDH_PACKAGES  extra Debian packages to bake into the root (space or comma separated). The root
#                 has no network and no apt lists, so dependencies of a package under test must be
#                 listed here. Part of the cache key: a new value builds a new root (about 30 s).
#   SDH_UNIFIED   1 (default): the container gets a pure cgroup2 tree, like a real Debian 12 or
#                 RHEL 9 host. 0: nspawn picks the layout from the host (hybrid on a hybrid host).
#   SDH_SHARE     host directory bind-mounted read-write at /host in the container
#                 (default: $SDH_HOME/share/$SDH_NAME, created empty by boot.sh and removed by
#                 stop.sh; a custom one is never emptied or removed).
#   SDH_SOURCES   apt sources for the root: a .sources/.list file, a mirror URL or 'deb ...' lines
#                 (one per line; default: the host's /etc/apt/sources.list.d/debian.sources, else
#                 /etc/apt/sources.list, else deb.debian.org's bookworm, -updates and -security).
#                 Must serve bookworm with Debian's nodejs 18; part of the cache key.
#   SDH_BOOT_TIMEOUT  seconds to wait for the container's systemd to finish booting (default 90).
#   SDH_STOP_TIMEOUT  seconds to wait for a clean poweroff before killing (default 20).
#   SDH_KEEP_VARIANTS how many roots of the current recipe (differing only in SDH_PACKAGES) to
#                 keep, most recently booted first (default 4).

set -euo pipefail

SDH_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SDH_NAME=${SDH_NAME:-sdh}
SDH_HOME=${SDH_HOME:-/var/cache/epmd-ng-sdh}
SDH_PACKAGES=${SDH_PACKAGES:-}
SDH_UNIFIED=${SDH_UNIFIED:-1}
SDH_SHARE_DEFAULT=$SDH_HOME/share/$SDH_NAME
SDH_SHARE=${SDH_SHARE:-$SDH_SHARE_DEFAULT}
SDH_SOURCES=${SDH_SOURCES:-}
SDH_BOOT_TIMEOUT=${SDH_BOOT_TIMEOUT:-90}
SDH_STOP_TIMEOUT=${SDH_STOP_TIMEOUT:-20}
SDH_KEEP_VARIANTS=${SDH_KEEP_VARIANTS:-4}

# The recipe. Anything here, the recipe functions below and the apt sources go
# into the cache key, so changing them builds a fresh root.
SDH_RECIPE_VERSION=1
SDH_SUITE=bookworm
# nodejs is Debian's own (bookworm: 18.x); the daemon must run on Node 18, not on the host's node.
# erlang-base brings real Erlang nodes and OTP's epmd client (and its epmd.socket, left disabled).
SDH_BASE_PACKAGES="systemd systemd-sysv dbus iproute2 procps python3-minimal rpm nodejs erlang-base"
SDH_NODE_MAJOR=18

# Host commands the harness needs, and the Debian packages that provide them.
# shellcheck disable=SC2034 # used by build-root.sh
SDH_HOST_TOOLS="systemd-nspawn:systemd-container mmdebstrap:mmdebstrap"

SDH_ROOTS=$SDH_HOME/roots
SDH_STATE_BASE=$SDH_HOME/state
SDH_LOCKS=$SDH_HOME/locks
SDH_STATE=$SDH_STATE_BASE/$SDH_NAME

sdh_log() { printf 'sdh: %s\n' "$*" >&2; }
sdh_die() { printf 'sdh: error: %s\n' "$*" >&2; exit 1; }

sdh_require_root() {
  [[ $(id -u) == 0 ]] || sdh_die "must run as root (systemd-nspawn, cgroups and mmdebstrap need it)"
}

sdh_check_name() {
  [[ $SDH_NAME =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,47}$ ]] ||
    sdh_die "bad SDH_NAME '$SDH_NAME': use letters, digits and '-', at most 48 characters"
}

# Timing: sdh_clock prints microseconds; sdh_since START prints seconds since START (e.g. 1.23).
sdh_clock() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }
sdh_since() {
  local d=$(( $(sdh_clock) - $1 ))
  printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}

# The full, sorted package list of the root: base packages plus SDH_PACKAGES.
sdh_packages() {
  # shellcheck disable=SC2086
  printf '%s\n' $SDH_BASE_PACKAGES ${SDH_PACKAGES//,/ } | sort -u
}

# What mmdebstrap is given as mirror arguments, one per line: a sources file, or apt lines.
sdh_sources() {
  if [[ -n $SDH_SOURCES ]]; then
    echo "$SDH_SOURCES"
  elif [[ -s /etc/apt/sources.list.d/debian.sources ]]; then
    echo /etc/apt/sources.list.d/debian.sources
  elif [[ -s /etc/apt/sources.list ]] && grep -q '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
    echo /etc/apt/sources.list
  else
    echo "deb http://deb.debian.org/debian $SDH_SUITE main"
    echo "deb http://deb.debian.org/debian $SDH_SUITE-updates main"
    echo "deb http://deb.debian.org/debian-security $SDH_SUITE-security main"
  fi
}

# Hash of what decides a root's content apart from its package list: recipe version, suite,
# architecture, apt sources, the line $1, and the recipe functions named after it as bash prints
# them with `declare -f` (so comments and formatting do not count).
sdh_recipe_hash() {
  local src
  src=$(sdh_sources)
  {
    echo "recipe=$SDH_RECIPE_VERSION suite=$SDH_SUITE arch=$(dpkg --print-architecture)"
    echo "$1"
    echo "$src"
    if [[ -f $src ]]; then grep -v '^[[:space:]]*#' "$src"; fi
    declare -f "${@:2}"
  } | sha256sum | cut -c1-12
}

# Cache key 'RECIPE-PACKAGES': RECIPE hashes everything that decides the root's content except
# the extra packages (sdh_recipe_hash with the base packages and the recipe functions below);
# PACKAGES hashes the full package list. Roots of another RECIPE are stale and get pruned; roots
# of the same RECIPE with other SDH_PACKAGES are variants in use by other tests, and a few are kept.
sdh_cache_key() {
  local recipe pkgs
  recipe=$(sdh_recipe_hash "base=$SDH_BASE_PACKAGES node=$SDH_NODE_MAJOR" \
    sdh_debootstrap sdh_mmdebstrap sdh_customize_root sdh_finish_root)
  pkgs=$(sdh_packages | sha256sum | cut -c1-8)
  echo "$recipe-$pkgs"
}

sdh_root_dir() { echo "$SDH_ROOTS/$SDH_SUITE-$1"; }

# The fresh root: what `mmdebstrap --variant=minbase` makes and nothing more (no Node, no
# compiler, no systemd), as a new user's Debian 12 would be. fresh.sh runs commands in it.
sdh_fresh_root_dir() {
  echo "$SDH_ROOTS/fresh-$SDH_SUITE-$(sdh_recipe_hash fresh sdh_debootstrap sdh_finish_root)"
}

# ---- the recipe (hashed into the cache key) ----------------------------------------------------

# Builds a minbase bookworm root into $1 (must not exist) from the apt sources of sdh_sources;
# further arguments are mmdebstrap options. Stdin must be /dev/null: mmdebstrap reads apt sources
# from a non-tty stdin.
sdh_debootstrap() {
  local root=$1
  local -a sources
  shift
  mapfile -t sources < <(sdh_sources)
  # In a private mount namespace: the /proc, /sys and /dev that mmdebstrap mounts into the root
  # vanish with it even when it is killed, and are never visible to an `rm -rf` on the host.
  unshare --mount --propagation private \
    mmdebstrap --mode=root --format=directory --variant=minbase \
    --aptopt='Acquire::Retries "3"' "$@" \
    "$SDH_SUITE" "$root" "${sources[@]}" </dev/null
}

# Builds the harness's root into $1 (must not exist): its packages, then the customize hook, which
# is handed $2, the cache key.
sdh_mmdebstrap() {
  local root=$1 key=$2
  sdh_debootstrap "$root" --include="$(sdh_packages | paste -sd, -)" \
    --customize-hook="bash $(printf %q "$SDH_DIR/build-root.sh") --customize \"\$1\" $key"
}

# Runs as mmdebstrap's customize hook (the root has /proc, /sys and /dev mounted): makes the root
# boot quickly and quietly as a container and checks what the tests rely on.
sdh_customize_root() {
  local r=$1 key=$2 f u state v
  chroot "$r" systemctl set-default multi-user.target
  # No timers (apt-daily, fstrim, ...) and no gettys: nothing should run that a test didn't start.
  for f in "$r"/usr/lib/systemd/system/*.timer "$r"/lib/systemd/system/*.timer; do
    [[ -e $f ]] && ln -sfn /dev/null "$r/etc/systemd/system/${f##*/}"
  done
  for u in getty.target getty@.service serial-getty@.service console-getty.service container-getty@.service; do
    ln -sfn /dev/null "$r/etc/systemd/system/$u"
  done
  # mmdebstrap copies the host's /etc/hostname; without one, the container keeps the hostname
  # nspawn gives it, the machine name (boot.sh also maps it to 127.0.1.1 in /etc/hosts, as the
  # Debian installer does, so Erlang nodes can reach each other by short name).
  rm -f "$r/etc/hostname"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  mkdir -p "$r/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\n' >"$r/etc/systemd/journald.conf.d/sdh.conf"
  # erlang-base's postinst enables its epmd.socket. Disable it (not mask) so that port 4369 is
  # free at boot for the daemon under test; tests can still start OTP's epmd.socket on purpose.
  for u in epmd.socket epmd.service; do
    if [[ -e $r/usr/lib/systemd/system/$u || -e $r/lib/systemd/system/$u ]]; then
      chroot "$r" systemctl disable --quiet "$u"
    fi
    state=$(chroot "$r" systemctl is-enabled "$u" 2>/dev/null || true)
    [[ $state != enabled* ]] || { echo "sdh: $u is still $state in the root" >&2; return 1; }
  done
  v=$(chroot "$r" node --version)
  [[ $v == "v$SDH_NODE_MAJOR."* ]] || {
    echo "sdh: the root's node is $v, expected Debian's v$SDH_NODE_MAJOR.x (check SDH_SOURCES)" >&2
    return 1
  }
  printf 'key=%s\nsuite=%s\nnode=%s\npackages=%s\n' "$key" "$SDH_SUITE" "$v" \
    "$(sdh_packages | paste -sd' ' -)" >"$r/etc/sdh-root"
}

# After mmdebstrap: no apt lists (the container has no network anyway) and no cached .debs.
sdh_finish_root() {
  local r=$1
  find "$r/var/lib/apt/lists" -mindepth 1 -maxdepth 1 ! -name partial ! -name lock -exec rm -rf {} +
  find "$r/var/lib/apt/lists/partial" "$r/var/cache/apt/archives" -mindepth 1 ! -name lock \
    ! -name partial -exec rm -rf {} + 2>/dev/null || true
  rm -f "$r"/var/cache/apt/*.bin
  if find "$r/var/cache/apt/archives" -name '*.deb' | grep -q .; then
    echo "sdh: $r/var/cache/apt/archives is not empty" >&2
    return 1
  fi
}

# ---- processes ---------------------------------------------------------------------------------

sdh_boot_id() { cat /proc/sys/kernel/random/boot_id; }

# Succeeds when PID is a live (not zombie) process that started at clock tick START
# (/proc/PID/stat field 22), so that a reused PID is never mistaken for ours.
sdh_alive_since() {
  local start=$2 stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- $stat
  [[ $1 != Z && $1 != X && ${20} == "$start" ]]
}
# Direct children of PID, one per line.
sdh_children() {
  local pid=$1 f stat
  if [[ -e /proc/$pid/task/$pid/children ]]; then
    cat /proc/"$pid"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
    return 0
  fi
  for f in /proc/[0-9]*/stat; do
    stat=$(cat "$f" 2>/dev/null) || continue
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    [[ $2 == "$pid" ]] && { f=${f#/proc/}; echo "${f%/stat}"; }
  done
  return 0
}

# Prints the host PID of this container's (or, given its state dir, another container's)
# systemd-nspawn if it is running (as recorded by
# boot.sh, checked against the boot id and the process start time, so a reused PID is never
# mistaken for it). Returns 1 otherwise.
sdh_nspawn_pid() {
  local state=${1:-$SDH_STATE} pid start boot
  [[ -r $state/nspawn.pid ]] || return 1
  read -r pid start boot <"$state/nspawn.pid" || return 1
  [[ $boot == "$(sdh_boot_id)" ]] || return 1
  sdh_alive_since "$pid" "$start" || return 1
  echo "$pid"
}

# Records $1 (just started) as this container's systemd-nspawn.
sdh_record_nspawn() {
  local stat
  stat=$(cat "/proc/$1/stat")
  stat=${stat##*) }
  # shellcheck disable=SC2086
  set -- "$1" $stat
  echo "$1 ${21} $(sdh_boot_id)" >"$SDH_STATE/nspawn.pid.tmp"
  mv -f "$SDH_STATE/nspawn.pid.tmp" "$SDH_STATE/nspawn.pid"
}

# Roots used by running containers (of any name), one per line.
sdh_live_roots() {
  local d
  for d in "$SDH_STATE_BASE"/*/; do
    [[ -r $d/root ]] || continue
    if sdh_nspawn_pid "${d%/}" >/dev/null; then cat "$d/root"; fi
  done
  return 0
}

# Host PID of the container's PID 1 (systemd): the only child of systemd-nspawn, once it has
# exec'd the container's init (before that, the child is still a forked systemd-nspawn).
sdh_leader() {
  local pid child
  pid=$(sdh_nspawn_pid) || return 1
  child=$(sdh_children "$pid" | head -n1)
  [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]] || return 1
  echo "$child"
}

# ---- cgroups -----------------------------------------------------------------------------------
# Each container runs in its own host cgroup 'sdh-NAME', created in the cgroup2 hierarchy and in
# the cgroup-v1 'name=systemd' hierarchy when the host has them (a hybrid host has both). nspawn
# then creates its 'payload' and 'supervisor' cgroups under it, not under the caller's cgroup.
# Other hierarchies (memory, cpu, ...) are left alone.

# Prints 'v2 MOUNTPOINT' and/or 'v1 MOUNTPOINT' (name=systemd) for the host's cgroup mounts.
sdh_cgroup_mounts() {
  local -a f
  local i v2='' v1=''
  while read -r -a f; do
    # mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    for ((i = 6; i < ${#f[@]}; i++)); do [[ ${f[i]} == - ]] && break; done
    if [[ ${f[i + 1]:-} == cgroup2 && -z $v2 ]]; then
      v2=${f[4]}
    elif [[ ${f[i + 1]:-} == cgroup && ,${f[i + 3]:-}, == *,name=systemd,* && -z $v1 ]]; then
      v1=${f[4]}
    fi
  done </proc/self/mountinfo
  [[ -n $v2 ]] && echo "v2 $v2"
  [[ -n $v1 ]] && echo "v1 $v1"
  return 0
}

# The container's own cgroup directories, one per line (they may not exist).
sdh_cgroup_dirs() {
  local mp
  while read -r _ mp; do echo "$mp/sdh-$SDH_NAME"; done < <(sdh_cgroup_mounts)
}

# Moves the calling (sub)shell into the container's own cgroups (created if missing) and sets
# nspawn's cgroup layout from SDH_UNIFIED: what a shell does just before it execs systemd-nspawn,
# so that nspawn creates its payload/supervisor cgroups there and not under the caller's.
sdh_enter_cgroups() {
  local -a dirs
  local d
  mapfile -t dirs < <(sdh_cgroup_dirs)
  ((${#dirs[@]})) || sdh_die "no cgroup2 or name=systemd cgroup hierarchy mounted on the host"
  for d in "${dirs[@]}"; do
    mkdir -p "$d"
    echo "$BASHPID" >"$d/cgroup.procs"
  done
  if [[ $SDH_UNIFIED == 1 ]]; then
    export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1
  else
    unset SYSTEMD_NSPAWN_UNIFIED_HIERARCHY
  fi
}

# PIDs in a cgroup directory and all its descendants.
sdh_cgroup_pids() {
  [[ -d $1 ]] || return 0
  find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

# Kills every process in the container's own cgroups, and nothing else, then removes the
# cgroups. Used by stop.sh after the clean poweroff, and by boot.sh on stale state.
sdh_cgroup_cleanup() {
  local dir pid left
  for dir in $(sdh_cgroup_dirs); do
    [[ -d $dir ]] || continue
    left=$(sdh_cgroup_pids "$dir")
    [[ -z $left ]] || sdh_log "killing $(wc -w <<<"$left") leftover process(es) in $dir"
    for _ in $(seq 100); do
      left=$(sdh_cgroup_pids "$dir")
      [[ -z $left ]] && break
      if [[ -e $dir/cgroup.kill ]]; then
        echo 1 >"$dir/cgroup.kill" 2>/dev/null || true
      else
        for pid in $left; do kill -KILL "$pid" 2>/dev/null || true; done
      fi
      sleep 0.05
    done
    [[ -z $(sdh_cgroup_pids "$dir") ]] || sdh_log "warning: processes left in $dir: $(sdh_cgroup_pids "$dir" | tr '\n' ' ')"
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [[ -d $dir ]] && sdh_log "warning: could not remove cgroup $dir"
  done
  return 0
}

# Stops this container (the caller holds its lock): SIGTERM to systemd-nspawn, which asks the
# container's systemd for a clean poweroff (SIGRTMIN+3). If that has not happened within
# SDH_STOP_TIMEOUT seconds (or $1 seconds; a systemd that is still starting up can miss the
# request), a second SIGTERM makes nspawn kill the container at once. Finally everything left in
# the container's own cgroups is killed (e.g. an orphaned container systemd after nspawn was
# SIGKILLed), and nothing outside them. Removes the container's state dir (console log
# included) and its default share dir. Safe when nothing is up.
sdh_stop_container() {
  local timeout=${1:-$SDH_STOP_TIMEOUT} pid deadline
  if pid=$(sdh_nspawn_pid); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + timeout))
    while sdh_nspawn_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    if sdh_nspawn_pid >/dev/null; then
      sdh_log "warning: '$SDH_NAME' did not power off within ${timeout} s; terminating it"
      kill -TERM "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 5))
      while sdh_nspawn_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
    fi
  fi
  sdh_cgroup_cleanup
  sdh_nspawn_leftovers
  rm -rf --one-file-system -- "$SDH_STATE"
  if [[ $SDH_SHARE == "$SDH_SHARE_DEFAULT" ]]; then
    rm -rf --one-file-system -- "$SDH_SHARE"
  fi
}

# Removes what systemd-nspawn leaves behind for this machine name on a host without a host
# systemd (its /run is not a tmpfs, so nspawn refuses to clear these itself).
sdh_nspawn_leftovers() {
  local d
  for d in /run/systemd/nspawn/propagate/"$SDH_NAME" /run/systemd/nspawn/unix-export/"$SDH_NAME"; do
    [[ -e $d ]] && rm -rf --one-file-system -- "$d"
  done
  return 0
}

# ---- locks -------------------------------------------------------------------------------------
# Locks live in $SDH_LOCKS; fd 8 is the per-container lock, fd 9 the root-build lock. Processes
# started while a lock is held must not inherit these fds (boot.sh closes them for nspawn).

sdh_lock_name() {
  local lockfile=$SDH_LOCKS/container-$SDH_NAME.lock
  mkdir -p "$SDH_LOCKS"
  while :; do
    exec 8>"$lockfile"
    flock -w 300 8 || sdh_die "timed out waiting for another boot/stop of '$SDH_NAME'"
    # stop.sh deletes the lock file when done; if that happened while we waited, lock afresh.
    [[ $(stat -L -c %d:%i /proc/self/fd/8) == "$(stat -c %d:%i "$lockfile" 2>/dev/null)" ]] && break
  done
}

# Called by stop.sh, holding the lock, when the name is free again: no lock files pile up.
sdh_unlock_name_remove() {
  rm -f "$SDH_LOCKS/container-$SDH_NAME.lock"
  exec 8>&-
}

# sdh_lock_build [-s|-n] : exclusive (default), shared (-s) or non-blocking exclusive (-n).
sdh_lock_build() {
  mkdir -p "$SDH_LOCKS"
  exec 9>"$SDH_LOCKS/build.lock"
  case ${1:-} in
    -s) flock -s -w 3600 9 ;;
    -n) flock -n 9 ;;
    *) flock -w 3600 9 ;;
  esac
}
sdh_unlock_build() { exec 9>&-; }

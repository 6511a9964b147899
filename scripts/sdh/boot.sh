#!/usr/bin/env bash
# Boots container SDH_NAME: Debian 12's systemd as PID 1 under systemd-nspawn, on a throw-away
# overlay over the cached root (built first if needed), with a private network (loopback only)
# and the share dir bind-mounted at /host. Returns once `systemctl is-system-running --wait`
# answers 'running' or 'degraded' (the failed units are printed); fails otherwise. The container
# keeps running after this script ends: always pair it with stop.sh (e.g. `trap ... EXIT`).
#
# Usage: SDH_NAME=ci boot.sh        (settings: see lib.sh)
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
sdh_require_root
sdh_check_name

t_start=$(sdh_clock)
sdh_lock_name

if pid=$(sdh_nspawn_pid); then
  sdh_die "container '$SDH_NAME' is already running (systemd-nspawn pid $pid); stop it first: SDH_NAME=$SDH_NAME $SDH_DIR/stop.sh"
fi
# Leftovers of an earlier run whose stop never happened (killed job, SIGKILLed nspawn, reboot):
# an orphaned container systemd may still run in our cgroup. Clean up before reusing the name.
if [[ -e $SDH_STATE/nspawn.pid ]] || [[ -n $(for d in $(sdh_cgroup_dirs); do [[ -d $d ]] && echo "$d"; done) ]]; then
  sdh_log "cleaning up what an earlier '$SDH_NAME' left behind"
  sdh_stop_container "$SDH_STOP_TIMEOUT"
fi

# The root: build-root.sh is quick when it is cached. Hold the build lock shared while starting
# so that no prune can remove the root under us.
for _ in 1 2 3; do
  root=$(bash "$SDH_DIR/build-root.sh") || sdh_die "no root to boot"
  sdh_lock_build -s || sdh_die "timed out waiting for the build lock"
  [[ -d $root ]] && break
  sdh_unlock_build
  root=
done
[[ -n $root ]] || sdh_die "the root keeps disappearing (another recipe pruning it?)"
t_boot=$(sdh_clock)

mkdir -p "$SDH_STATE"
echo "$root" >"$SDH_STATE/root"
touch "$root.used"
if [[ $SDH_SHARE == "$SDH_SHARE_DEFAULT" ]]; then
  rm -rf --one-file-system -- "$SDH_SHARE"
fi
mkdir -p "$SDH_SHARE"

# Both --register=no and --keep-unit are needed without a host systemd/machined (otherwise
# nspawn fails with "Failed to open system bus").
(
  exec 8>&- 9>&-
  sdh_enter_cgroups
  exec setsid systemd-nspawn --quiet --register=no --keep-unit --boot \
    --machine="$SDH_NAME" --directory="$root" --volatile=overlay \
    --link-journal=no --resolv-conf=off --timezone=off --console=read-only --setenv=SYSTEMD_COLORS=0 \
    --private-network --bind="$SDH_SHARE:/host"
) </dev/null >"$SDH_STATE/console.log" 2>&1 &
sdh_record_nspawn "$!"
disown
sdh_unlock_build

fail() {
  sdh_log "error: $*"
  sdh_log "last lines of the container's console:"
  tail -n 40 "$SDH_STATE/console.log" | sed 's/^/  | /' >&2
  sdh_stop_container 3
  exit 1
}

# Wait for the container's systemd to exist and to have its private bus socket; before that,
# systemctl fails with "Failed to connect to bus".
deadline=$((SECONDS + SDH_BOOT_TIMEOUT))
while :; do
  sdh_nspawn_pid >/dev/null || fail "systemd-nspawn exited during boot"
  if leader=$(sdh_leader) && [[ -S /proc/$leader/root/run/systemd/private ]]; then
    # /etc/hosts as Debian's installer writes it, with this container's name on 127.0.1.1, so that
    # every test sees what a stock Debian host has (the write goes to the throw-away overlay).
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n\n%s\n%s\n%s\n%s\n' "$SDH_NAME" \
      '# The following lines are desirable for IPv6 capable hosts' \
      '::1     localhost ip6-localhost ip6-loopback' 'ff02::1 ip6-allnodes' 'ff02::2 ip6-allrouters' \
      >"/proc/$leader/root/etc/hosts"
    break
  fi
  ((SECONDS < deadline)) || fail "the container's systemd did not start within ${SDH_BOOT_TIMEOUT} s"
  sleep 0.02
done

state=$(timeout "$((deadline - SECONDS + 1))" bash "$SDH_DIR/exec.sh" systemctl is-system-running --wait 2>&1) || true
case $state in
  running) ;;
  degraded)
    sdh_log "warning: '$SDH_NAME' booted degraded; failed units:"
    bash "$SDH_DIR/exec.sh" systemctl --failed --no-legend --plain | sed 's/^/  | /' >&2 || true
    ;;
  *) fail "the container's systemd did not reach 'running' (is-system-running: ${state:-timeout})" ;;
esac

sdh_log "'$SDH_NAME' is $state: boot $(sdh_since "$t_boot") s, total $(sdh_since "$t_start") s (root $root)"

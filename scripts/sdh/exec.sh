#!/usr/bin/env bash
# Runs a command inside running container SDH_NAME: joins all of its namespaces (mount, UTS, IPC,
# network, PID, cgroup, root and cwd of its PID 1) with a clean environment (PATH, HOME=/root,
# LANG=C.UTF-8; pass more with `env VAR=value CMD...`). Stdin, stdout and stderr are passed
# through, and so is the command's exit status. Exits 125 if the container is not running.
#
# Usage: SDH_NAME=ci exec.sh [--] CMD [ARGS...]
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

[[ ${1:-} == -- ]] && shift
if (($# == 0)); then
  echo "usage: SDH_NAME=NAME $0 [--] CMD [ARGS...]" >&2
  exit 125
fi
sdh_check_name
leader=$(sdh_leader) || { sdh_log "error: container '$SDH_NAME' is not running"; exit 125; }

# Run in the container's own host cgroup (in a leaf 'exec' next to nspawn's), so that stop.sh
# also catches anything started this way that outlives the command.
for d in $(sdh_cgroup_dirs); do
  [[ -d $d ]] || continue
  if mkdir -p "$d/exec" 2>/dev/null; then
    echo $$ >"$d/exec/cgroup.procs" 2>/dev/null || true
  fi
done

exec nsenter --target "$leader" --mount --uts --ipc --net --pid --cgroup --root --wd -- \
  env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  "$@"

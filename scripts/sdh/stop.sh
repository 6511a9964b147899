#!/usr/bin/env bash
# Stops container SDH_NAME: clean poweroff first, then SIGKILL for whatever is left in the
# container's own host cgroups (and nowhere else), then removes those cgroups and nspawn's
# leftovers under /run. Safe to run when nothing is up; exits 0 then too.
#
# Usage: SDH_NAME=ci stop.sh
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
sdh_require_root
sdh_check_name

t0=$(sdh_clock)
sdh_lock_name
if sdh_nspawn_pid >/dev/null; then
  sdh_stop_container "$SDH_STOP_TIMEOUT"
  sdh_log "'$SDH_NAME' stopped in $(sdh_since "$t0") s"
else
  sdh_stop_container "$SDH_STOP_TIMEOUT"
fi
sdh_unlock_name_remove

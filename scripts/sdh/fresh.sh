#!/usr/bin/env bash
# Runs CMD as root in the fresh root (mmdebstrap --variant=minbase bookworm: no Node, no compiler,
# no systemd; built and cached by `build-root.sh --fresh`) under systemd-nspawn, on a throw-away
# overlay, with the share dir at /host and the working directory DIR (default /host). Unlike
# boot.sh's containers it shares the host's network, so that apt and npm reach Debian's mirror
# and the npm registry, and it gets what the host needs for them: the CA bundle the host's Node
# trusts (NODE_EXTRA_CA_CERTS, else /etc/ssl/certs/ca-certificates.crt; for TLS-inspecting
# proxies), the proxy variables, npm's registry and proxy settings and apt's Acquire::*::Proxy ones.
# Downloaded .debs and npm's cache persist in $SDH_HOME/fresh-cache: downloads only, the root
# itself starts without any of those packages every time.
#
# The script becomes systemd-nspawn (same PID) and exits with CMD's status. SIGTERM to that PID
# kills everything in the container at once. Always follow with stop.sh, which removes the
# state and share dirs and anything left in the container's cgroups.
#
# CMD runs without nspawn's NOTIFY_SOCKET (meant for a container's init; epmd-ng would take it for
# systemd's), so its environment is that of a root shell.
#
# Usage: SDH_NAME=NAME fresh.sh [--chdir DIR] [--] CMD [ARGS...]
source "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"
sdh_require_root
sdh_check_name

chdir=/host
[[ ${1:-} == --chdir ]] && { chdir=$2; shift 2; }
[[ ${1:-} == -- ]] && shift
(($#)) || sdh_die "usage: SDH_NAME=NAME $0 [--chdir DIR] [--] CMD [ARGS...]"

sdh_lock_name
if pid=$(sdh_nspawn_pid); then
  sdh_die "container '$SDH_NAME' is already running (systemd-nspawn pid $pid); stop it first: SDH_NAME=$SDH_NAME $SDH_DIR/stop.sh"
fi
# One run at a time uses the caches: apt fails at once, instead of waiting, when another apt
# holds the archive directory's lock. nspawn keeps fd 7, so the lock lasts as long as the run.
exec 7>"$SDH_LOCKS/fresh-cache.lock"
if ! flock -n 7; then
  sdh_log "waiting for another fresh.sh run to finish (they share the download caches)"
  flock -w 3600 7 || sdh_die "timed out waiting for $SDH_LOCKS/fresh-cache.lock"
fi

root=$(bash "$SDH_DIR/build-root.sh" --fresh) || sdh_die "no fresh root"
# Shared build lock until this container is on record as using the root: no prune removes it.
sdh_lock_build -s || sdh_die "timed out waiting for the build lock"
[[ -d $root ]] || sdh_die "the fresh root $root disappeared"
mkdir -p "$SDH_STATE"
echo "$root" >"$SDH_STATE/root"
touch "$root.used"
mkdir -p "$SDH_SHARE" "$SDH_HOME/fresh-cache/apt" "$SDH_HOME/fresh-cache/npm"

args=(--bind="$SDH_SHARE:/host" --chdir="$chdir"
  --bind="$SDH_HOME/fresh-cache/apt:/var/cache/apt/archives" --bind="$SDH_HOME/fresh-cache/npm:/root/.npm")
ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
if [[ -s $ca ]]; then
  args+=(--bind-ro="$ca:/run/host-ca-certificates.crt" --setenv=NODE_EXTRA_CA_CERTS=/run/host-ca-certificates.crt)
fi
while read -r var; do
  args+=(--setenv="$var=${!var}")
done < <(compgen -e | grep -E '^(https?_proxy|no_proxy|HTTPS?_PROXY|NO_PROXY)$' || true)
# npm's network settings as the host's npm sees them (npmrc files and npm_config_* variables), and
# nothing else of its configuration: paths such as prefix, cache or cafile mean nothing inside.
if command -v npm >/dev/null; then
  while IFS= read -r setting; do
    args+=(--setenv="npm_config_$setting")
  done < <(npm config list --json 2>/dev/null | node -e '
    const c = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const k of ["registry", "proxy", "https-proxy", "noproxy"]) {
      const v = [c[k] ?? []].flat().join(",");
      if (v) console.log(`${k.replace("-", "_")}=${v}`);
    }' || true)
fi
apt-config dump 2>/dev/null | grep -Ei '^Acquire::[a-z]+::Proxy' >"$SDH_STATE/apt-proxy.conf" || true
if [[ -s $SDH_STATE/apt-proxy.conf ]]; then
  args+=(--bind-ro="$SDH_STATE/apt-proxy.conf:/etc/apt/apt.conf.d/99host-proxy")
fi

sdh_record_nspawn "$$"
sdh_unlock_build
exec 8>&-
sdh_enter_cgroups
# CAP_NET_ADMIN, which nspawn drops when the network is the host's: root on a real machine has it,
# and epmd-ng needs it to attach its this-host-only socket filter.
exec systemd-nspawn --quiet --register=no --keep-unit --machine="$SDH_NAME" \
  --directory="$root" --volatile=overlay --link-journal=no --resolv-conf=copy-host \
  --timezone=off --console=pipe --capability=CAP_NET_ADMIN "${args[@]}" -- env -u NOTIFY_SOCKET "$@"

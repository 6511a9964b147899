#!/usr/bin/env bash
# Brings a checkout to a runnable state: Node dependencies as locked, then the bundle and the
# native systemd addon. Cheap when nothing changed. What a minimal Debian 12 lacks for this (Node
# and npm; a C compiler and libc's headers for the addon) is installed with apt when running as
# root, or named in one line otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  bash scripts/ensure-packages.sh nodejs npm
fi
# Only when the addon is due to be compiled; the check itself says what is wrong if even the
# packages do not give a working compiler (e.g. a CC that does not exist).
if ! node scripts/build-native.mjs --if-stale --check-compiler 2>/dev/null; then
  bash scripts/ensure-packages.sh gcc libc6-dev
  node scripts/build-native.mjs --if-stale --check-compiler
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build

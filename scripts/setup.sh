#!/usr/bin/env bash
# Brings a checkout to a runnable state: Node dependencies as locked, then the bundle and the
# native systemd addon. Cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  bash scripts/ensure-packages.sh nodejs npm
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build

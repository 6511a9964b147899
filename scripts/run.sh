#!/usr/bin/env bash
# One command from a fresh checkout to a running daemon in the foreground. Arguments are passed to
# the daemon (OTP syntax works: scripts/run.sh -port 4369 -d).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# As an executable: its first line has the node flags it runs with.
exec dist/epmd-ng.mjs "$@"

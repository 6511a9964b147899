#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages (as root), dependencies, build, type check,
# then every vitest suite. Ends with one "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "$0")/.."
# erlang-base: real Erlang nodes and OTP's epmd as the reference; iproute2: test network namespaces.
bash scripts/ensure-packages.sh erlang-base python3 iproute2
bash scripts/setup.sh
npx tsc --noEmit
report=$(mktemp)
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' "$report" || true
exit $status

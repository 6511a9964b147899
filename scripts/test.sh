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
alone_report=$(mktemp)
trap 'rm -f "$report" "$alone_report"' EXIT
status=0
vitest() { npx vitest run --reporter=default --reporter=json --outputFile.json="$1" "${@:2}"; }
# The chaos test times every restart of the daemon (serving again within 1 s of a SIGKILL), so it
# runs on its own after the rest, where the load of other suites cannot stretch those times.
alone=test/systemd/chaos.test.ts
if [ $# -gt 0 ]; then
  vitest "$report" "$@" || status=$?
else
  vitest "$report" --exclude "$alone" || status=$?
  vitest "$alone_report" "$alone" || status=$?
fi
node -e '
  const fs = require("fs");
  const reports = process.argv.slice(1).filter((f) => fs.statSync(f).size > 0).map((f) => JSON.parse(fs.readFileSync(f, "utf8")));
  const sum = (key) => reports.reduce((n, r) => n + r[key], 0);
  console.log(`Tests: ${sum("numPassedTests")} passed, ${sum("numFailedTests")} failed`);
' "$report" "$alone_report" || true
exit $status

#!/usr/bin/env bash
# npm run bench:restart (root): how long `systemctl restart epmd-ng` takes with N registrations in
# the fd store (default 10,000), on a real systemd in the project's nspawn harness, until every node
# is served again. Prints the timings; nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_NODES:-10000}
export SDH_NAME=bench-restart-$$
# The container's systemd inherits this shell's fd limit: it must hold two fds per registration,
# and epmd-ng gets them all back at once after the restart.
ulimit -n 262144 2>/dev/null || true
bash scripts/sdh/boot.sh >/dev/null
trap 'bash scripts/sdh/stop.sh >/dev/null 2>&1' EXIT
share=${SDH_HOME:-/var/cache/epmd-ng-sdh}/share/$SDH_NAME
mkdir -p "$share/dist" "$share/build" "$share/scripts" "$share/test/fixtures"
cp -r dist/epmd-ng.mjs dist/lib "$share/dist/"; cp build/sd_native.node "$share/build/"; cp scripts/install.sh "$share/scripts/"
cp test/fixtures/holder.mjs test/fixtures/once-only-node.mjs "$share/test/fixtures/"; cp -r systemd "$share/"
inside() { bash scripts/sdh/exec.sh bash -c "$1"; }
inside 'SRC=/host bash /host/scripts/install.sh && systemctl daemon-reload && systemctl enable epmd-ng.service >/dev/null 2>&1 && systemctl start epmd-ng.socket'
inside "systemd-run -q -p LimitNOFILE=65536 --setenv=HOLDER_LISTEN=0 --unit=holder node /host/test/fixtures/holder.mjs c $N /run/holder.out"
count() { inside "epmd -names | grep -c '^name ' || true"; }
start=$(date +%s%N)
for _ in $(seq 240); do [ "$(count)" = "$N" ] && break; sleep 0.5; done
[ "$(count)" = "$N" ] || { echo "only $(count) of $N registered:"; inside "journalctl -u holder --no-pager | grep -v \"^ \" | head -20; journalctl -u epmd-ng --no-pager -p warning | tail -5"; exit 1; }
echo "registered $N nodes in $(( ($(date +%s%N) - start) / 1000000 )) ms"
stored=$(inside 'systemctl show -p NFileDescriptorStore --value epmd-ng.service')
echo "fd store: $stored fds"
poll='const net=require("net");const n=+process.argv[1];const t0=Date.now();let first=null;
function ask(){return new Promise(r=>{const s=net.connect(4369,"127.0.0.1",()=>s.write(Buffer.from([0,1,110])));const c=[];s.on("data",d=>c.push(d));s.on("close",()=>r(Buffer.concat(c).subarray(4).toString().split("\n").filter(Boolean).length));s.on("error",()=>r(-1))})}
(async()=>{for(;;){const k=await ask();if(first===null)first=[Date.now()-t0,k];if(k===n){console.log(JSON.stringify({firstAnswerMs:first[0],firstAnswerNodes:first[1],allServedMs:Date.now()-t0}));return}}})()'
inside "systemctl restart --no-block epmd-ng.service; node -e '$poll' $N" > "$share/result.json"
inside 'systemctl show -p ExecMainStartTimestampMonotonic -p ActiveEnterTimestampMonotonic epmd-ng.service' > "$share/show.txt"
startup=$(awk -F= '/ExecMainStart/{s=$2} /ActiveEnter/{a=$2} END{printf "%.0f", (a-s)/1000}' "$share/show.txt")
echo "restart with $N stored registrations: $(cat "$share/result.json"); process start to READY: ${startup} ms"

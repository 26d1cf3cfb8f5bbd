#!/usr/bin/env bash
# Run every acceptance scenario (NFR-3) against a running server, as load/RESULTS.md records them.
#   DATABASE_URL=... load/run_all.sh ws://127.0.0.1:9100/ [OUT_DIR]
# The server should run with IMSERVER_RATE=100 (see README, "Load tests and benchmarks").
set -euo pipefail
url=${1:?usage: load/run_all.sh WS_URL [OUT_DIR]}
out=${2:-load/results/$(date +%Y%m%d-%H%M%S)}
here=$(cd "$(dirname "$0")" && pwd)
imload=${IMLOAD:-$here/../.venv/bin/imload}
mkdir -p "$out"
for name in groups dm big-group idle storm churn; do
    "$imload" setup "$here/scenarios/$name.json"
    "$imload" run "$here/scenarios/$name.json" --url "$url" --out "$out/$name.json"
done
for name in groups dm big-group; do
    "$imload" ramp "$here/scenarios/$name.json" --url "$url" --out "$out/$name-ramp.json"
done
cat "$out"/*.md > "$out/SUMMARY.md"
echo "results in $out" >&2

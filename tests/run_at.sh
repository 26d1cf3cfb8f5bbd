#!/usr/bin/env bash
# Run the tests with the machine's clock set to another time (DESIGN rule 10: no test's result depends on the
# hour, the day or the time zone it runs in). The clock starts at WHEN, a wall-clock time in Asia/Shanghai,
# and runs on from there; ZONE (default UTC) is the machine's time zone for the run. The monotonic clock (trio's
# timers) is shifted too but runs at the real rate (FAKETIME_DONT_FAKE_MONOTONIC=1 would break Python's
# time.sleep under libfaketime 0.9.10: EINVAL). Postgres keeps the real clock: code that mixes the database's
# now() with the machine's time fails here too.
#
#   tests/run_at.sh WHEN [pytest arguments...]
#   tests/run_at.sh '2027-01-31 23:59' -x tests/bots             # a minute before a month ends in Shanghai
#   ZONE=America/Los_Angeles tests/run_at.sh '2028-03-01 00:01'  # just after a leap day, 08:01 the day before there
#
# Needs faketime (Debian: apt-get install faketime).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -lt 1 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
when=$1
shift
zone=${ZONE:-UTC}
if ! command -v faketime >/dev/null; then
    echo "run_at.sh: faketime is not installed (apt-get install faketime)" >&2
    exit 2
fi

epoch=$(date -d "TZ=\"Asia/Shanghai\" $when" +%s)
start=$(TZ=$zone date -d "@$epoch" '+%Y-%m-%d %H:%M:%S')
echo "run_at.sh: $(TZ=Asia/Shanghai date -d "@$epoch" '+%F %R %Z') in Shanghai, $start in $zone" >&2
TZ=$zone exec faketime -f "@$start" "${VENV:-.venv}/bin/pytest" "$@"

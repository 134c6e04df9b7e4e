#!/usr/bin/env bash
# bench/quick.sh — `make bench-quick`, the regression guard: (a), (b), (b2),
# (c) and (g) at small counts (under 2 minutes on 2 cores), then each ratio
# (Gannet ÷ its ceiling, Gannet ÷ Postfix, (g) ÷ (b)) against the one in the
# committed bench/results/latest-quick.md (git show HEAD:...), with a
# WARNING line for each that dropped by more than 15%. It always exits 0:
# a shared machine is too noisy for a pass/fail. See bench/README.md.
#
# The counts are larger than BENCH_QUICK=1's own (which only checks the
# script), so that a run lasts long enough for its ratio to mean something;
# every BENCH_* knob still overrides them.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
prev=$(mktemp /tmp/gannet-bench-quick.XXXXXX)
trap 'rm -f "$prev"' EXIT
git show HEAD:bench/results/latest-quick.md >"$prev" 2>/dev/null || : >"$prev"

export BENCH_QUICK=1
export BENCH_SCENARIOS=${BENCH_SCENARIOS:-"a b b2 c g"}
export BENCH_SYSTEMS=${BENCH_SYSTEMS:-"ceiling postfix gannet"}
export BENCH_MSGS=${BENCH_MSGS:-3000} BENCH_CONNS=${BENCH_CONNS:-20} BENCH_PER_CONN=${BENCH_PER_CONN:-100}
export BENCH_C_MSGS=${BENCH_C_MSGS:-200} BENCH_C_CONNS=${BENCH_C_CONNS:-10}
start=$(date +%s)
bash bench/run.sh >/dev/null
rc=$?
echo "bench-quick: bench/run.sh took $(($(date +%s) - start)) s (exit $rc); report in bench/results/latest-quick.md"
/usr/bin/python3 bench/lib/report.py compare "$prev" bench/results/latest-quick.md
exit 0

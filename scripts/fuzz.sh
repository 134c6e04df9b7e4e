#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a fixed time each ($1, default 10s).
set -euo pipefail
t=${1:-10s}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    echo "fuzz: $pkg $f ($t)"
    if ! go test -run '^$' -fuzz "^${f}\$" -fuzztime "$t" "$pkg"; then status=1; fi
  done
done
exit $status

#!/usr/bin/env bash
# Runs the example programs that show the runtime at work, in order, and
# fails if any of them fails.
set -euo pipefail
build="${1:-build}"
status=0
for program in "$build"/examples/*; do
  [[ -x "$program" && -f "$program" ]] || continue
  echo "=== demo: $(basename "$program")"
  if ! "$program"; then
    echo "demo: $(basename "$program") failed" >&2
    status=1
  fi
done
exit $status

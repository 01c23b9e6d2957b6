#!/usr/bin/env bash
# Runs a command with fresh PostgreSQL and Redis servers on loopback and
# stops them afterwards, whatever the command's outcome:
#   scripts/with-services.sh ctest --test-dir build
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(mktemp -d /tmp/sluice-services.XXXXXX)"
trap '"$here/services.sh" stop "$dir"' EXIT
env_file="$("$here/services.sh" start "$dir")"
# shellcheck disable=SC1090
source "$env_file"
# Tests that need a server fail instead of skipping when it is missing.
export SLUICE_REQUIRE_SERVICES=1
"$@"

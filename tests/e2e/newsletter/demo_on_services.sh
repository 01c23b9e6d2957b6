#!/usr/bin/env bash
# Runs scripts/demo.sh with the bot on the PostgreSQL and Redis servers that
# scripts/with-services.sh starts, for the ctest test
# Newsletter.DemoOnPostgresAndRedis:
#
#   demo_on_services.sh BUILD_DIR
#
# It maps SLUICE_TEST_POSTGRES_URL and SLUICE_TEST_REDIS_URL to
# SLUICE_DEMO_DB and SLUICE_DEMO_REDIS. When either is missing, it exits with
# 77 (ctest reports the test as skipped), or with 1 when
# SLUICE_REQUIRE_SERVICES=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
skip_status=77

missing=()
[[ -n "${SLUICE_TEST_POSTGRES_URL:-}" ]] || missing+=(SLUICE_TEST_POSTGRES_URL)
[[ -n "${SLUICE_TEST_REDIS_URL:-}" ]] || missing+=(SLUICE_TEST_REDIS_URL)
if ((${#missing[@]} > 0)); then
  if [[ "${SLUICE_REQUIRE_SERVICES:-}" == 1 ]]; then
    echo "demo_on_services: failed because SLUICE_REQUIRE_SERVICES=1 and these variables" \
      "are not set: ${missing[*]}; run the test under scripts/with-services.sh" >&2
    exit 1
  fi
  echo "demo_on_services: skipped because these variables are not set: ${missing[*]};" \
    "run the test under scripts/with-services.sh"
  exit "$skip_status"
fi

export SLUICE_DEMO_DB="$SLUICE_TEST_POSTGRES_URL"
export SLUICE_DEMO_REDIS="$SLUICE_TEST_REDIS_URL"
exec bash "$root/scripts/demo.sh" "$@"

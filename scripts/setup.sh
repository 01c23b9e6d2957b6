#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/packages.txt that are not
# installed yet. Runs apt only when something is missing, so a second run
# takes well under a second.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mapfile -t wanted < <(grep -v -e '^#' -e '^$' "$here/packages.txt")

missing=()
for package in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$package")
  fi
done

if (( ${#missing[@]} == 0 )); then
  exit 0
fi

echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
if [[ "$(id -u)" != 0 ]]; then
  echo "setup: error: installing packages needs root; run 'sudo $0' or install them yourself" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Installing postgresql-15 and redis-server must not start system-wide
# services; the tests start their own servers on loopback.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  created_policy=1
fi
cleanup() { if (( created_policy )); then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# install-deps.sh: installs, from Debian 12 packages, everything sluice needs to
# build, test and run its demo. Idempotent; needs root only when something is missing.
set -euo pipefail

PACKAGES=(
  g++ meson ninja-build pkg-config clang-format
  libsqlite3-dev sqlite3 libpq-dev libuv1-dev libsimdjson-dev prometheus-cpp-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  node-llhttp prometheus faketime
  postgresql postgresql-common postgresql-client pgbouncer procps curl bc openssl postgresql-15-pgtap
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The postgresql package may start a system cluster; sluice's scripts use their
# own throw-away clusters (pg_virtualenv) and do not need it.

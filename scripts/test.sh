#!/usr/bin/env bash
# Installs everything the test suite needs (Debian's nginx and docker-compose for the
# deployment tests, the package with its test extra) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
python -m pip install -q -e ".[test]"
exec python -m pytest "$@"

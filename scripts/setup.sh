#!/usr/bin/env bash
# Installs everything mnv3bench and its tests need on a fresh Debian machine:
# Debian's adb client (a second, independent ADB client the emulator is tested against)
# and the package itself with its test extras, at the exact versions the suite passed with
# (constraints.txt; MNV3BENCH_UNPINNED=1 installs from pyproject's ranges instead, to try
# new releases before regenerating constraints.txt). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v adb >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq adb >/dev/null
fi
if [ "${MNV3BENCH_UNPINNED:-}" = 1 ]; then PINS=(); else PINS=(-c constraints.txt); fi
python3 -m pip install -q --disable-pip-version-check -e '.[test]' "${PINS[@]}"

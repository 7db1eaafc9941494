#!/usr/bin/env bash
# Installs everything mnv3bench and its tests need, on any Debian/Ubuntu machine:
# Debian's adb (the adb server mnv3bench uses when it runs, and a second, independent ADB
# client the emulator is tested against), and the package with its test extras in a project
# virtual environment, .venv, at the exact versions the suite passed with (constraints.txt;
# MNV3BENCH_UNPINNED=1 installs from pyproject's ranges instead, to try new releases before
# regenerating constraints.txt). Safe to run again.
#
# Why always a project venv: Debian 12 and Ubuntu 24.04 refuse `pip install` into their own
# python3 (PEP 668, "externally managed"), and installing into whatever Python is current
# (pyenv's, a user's activated venv) would change an environment the user owns. A .venv
# made from the current python3 works the same on all three, and the commands to run
# afterwards are the same everywhere: .venv/bin/mnv3bench, .venv/bin/python -m pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "$@" >/dev/null
}

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "setup: no $PYTHON on PATH; install Python 3.11 or newer (apt-get install python3)." >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: mnv3bench needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
    exit 1
fi

needed=()
command -v adb >/dev/null 2>&1 || needed+=(adb)
# Debian splits venv's pip bootstrap (ensurepip) into python3-venv.
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || needed+=(python3-venv)
if [ ${#needed[@]} -gt 0 ]; then apt_install "${needed[@]}"; fi

# A .venv whose interpreter is gone (the Python it was made from was removed or moved) is remade.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c '' >/dev/null 2>&1; then
    rm -rf .venv
    "$PYTHON" -m venv .venv
fi
if [ "${MNV3BENCH_UNPINNED:-}" = 1 ]; then PINS=(); else PINS=(-c constraints.txt); fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' "${PINS[@]}"

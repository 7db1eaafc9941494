#!/usr/bin/env bash
# Runs scripts/setup.sh the way a fresh Debian/Ubuntu user would: a clean environment
# (env -i, the system PATH only, so the system python3 and no pyenv or venv), in a scratch
# copy of this checkout, then checks that the installed command starts. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d /tmp/mnv3bench-clean-setup.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
# The files git knows (committed or not) and new ones it does not ignore: what a clone would have.
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$scratch"
start=$SECONDS
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" bash "$scratch/scripts/setup.sh"
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" "$scratch/.venv/bin/mnv3bench" --help >/dev/null
echo "clean set-up with $("$scratch/.venv/bin/python" --version) passed in $((SECONDS - start)) s"

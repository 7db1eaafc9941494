#!/usr/bin/env bash
# Runs the README's command 1 the way a fresh Debian/Ubuntu user would: a clean environment
# (env -i, the system PATH only, so the system python3 and no pyenv or venv), in a scratch
# copy of this checkout: scripts/setup.sh, then `.venv/bin/mnv3bench table 5 --device emulator`
# for real (building its nine models), with few and short trials so that it takes minutes,
# not the default's. Checks that it exits 0 and wrote the scratch copy's
# reports/emulator/latest/table-5.md. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch="$(mktemp -d /tmp/mnv3bench-clean-setup.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
# The files git knows (committed or not) and new ones it does not ignore: what a clone would have.
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$scratch"
clean=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME")
start=$SECONDS
"${clean[@]}" bash "$scratch/scripts/setup.sh"
# Quick but real: 2 trials of 3 runs per variant (the table's numbers mean little; that it runs
# end to end is what is checked). From inside the copy, so reports/ and models/ are its own.
quick=(--trials 2 --precision none --num-runs 3 --warmup-runs 1 --min-secs 0 --max-secs 5)
(cd "$scratch" && "${clean[@]}" timeout 1200 .venv/bin/mnv3bench table 5 --device emulator "${quick[@]}")
test -s "$scratch/reports/emulator/latest/table-5.md" || {
    echo "check_clean_setup: table 5 exited 0 but wrote no reports/emulator/latest/table-5.md" >&2
    exit 1
}
echo "clean set-up and table 5 with $("$scratch/.venv/bin/python" --version) passed in $((SECONDS - start)) s"

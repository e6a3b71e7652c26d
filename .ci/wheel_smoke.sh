#!/usr/bin/env bash
# The wheel works anywhere (#40): build it, install it (not editable) into a fresh virtual
# environment that takes torch & co. from this machine (--system-site-packages), and from a
# folder outside the checkout run .ci/wheel_smoke.py: every zoo model loaded from the package
# data, a traversal, a one-epoch training and notebook 00_data through `python -m facelib run`.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d /tmp/facelib-wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
# --no-build-isolation: setuptools from this machine (CI may have no index); the build's own
# leftovers in the checkout (build/, facelib.egg-info, both ignored by git) go unless they were there
made=(); for d in build facelib.egg-info; do [ -e "$d" ] || made+=("$d"); done
"$PYTHON" -m pip wheel . -w "$WORK/dist" --no-deps --no-build-isolation -q
for d in "${made[@]}"; do rm -rf "$d"; done
wheel=("$WORK"/dist/facelib-*.whl)
echo "wheel: $(basename "${wheel[0]}") ($(du -m "${wheel[0]}" | cut -f1) MB)"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
"$WORK/venv/bin/python" -m pip install -q --no-deps --force-reinstall "${wheel[0]}"
mkdir "$WORK/run" && cd "$WORK/run"
# no PYTHONPATH and no FACELIB_ZOO / FACELIB_RESULTS: only what the wheel installed
env -u PYTHONPATH -u FACELIB_ZOO -u FACELIB_RESULTS PATH="$WORK/venv/bin:$PATH" \
  "$WORK/venv/bin/python" "$REPO/.ci/wheel_smoke.py" "$REPO"
echo "wheel smoke test passed in $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# Builds the maturin example as a user would and tests it against Cython and NumPy:
#
#   1. a venv with requirements.txt (maturin, NumPy, Cython, setuptools, pytest), made with
#      `$PYTHON -m venv` (PYTHON defaults to python3) and pip; remade only when
#      requirements.txt changes;
#   2. `maturin build --release` of the extension `cyview_example`, then `pip install` of
#      its wheel;
#   3. `pip install` of the Cython module `cyfuncs` (cython/: the `cdef api` function that
#      Rust calls, and the Cython twins of the Rust functions);
#   4. pytest tests/.
#
#   examples/maturin/run.sh              all of it
#   examples/maturin/run.sh -k dtype     the same, passing the arguments on to pytest
#
# Everything it builds goes to $EXAMPLE_MATURIN_DIR, by default
# $CARGO_TARGET_DIR/example-maturin (target/example-maturin at the repository's root when
# CARGO_TARGET_DIR is unset): venv/, cargo/ (cargo's target dir), wheels/, cython/, pytest.log.
# The last line is "N passed, N failed" (pytest's counts, errors counted as failures, plus
# one failure when a build step failed or pytest ran no test); the exit status is non-zero
# on any failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${EXAMPLE_MATURIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/example-maturin}
python=${PYTHON:-python3}
venv=$work/venv
vpy=$venv/bin/python

# A step failed: say why, then the summary line.
err() {
  echo "examples/maturin/run.sh: $*" >&2
  echo "0 passed, 1 failed"
  exit 1
}
command -v cargo >/dev/null 2>&1 || err "missing cargo: install stable Rust with rustup (https://rustup.rs)"
command -v "$python" >/dev/null 2>&1 || err "missing $python: install CPython 3.9 or later with its headers and venv (Debian: apt-get install -y python3-dev python3-venv), or set PYTHON"

start=$(date +%s)
step_start=$start
timings=()
step() {
  local now
  now=$(date +%s)
  [ -z "${step_name:-}" ] || timings+=("$(printf '%5ss  %s' $((now - step_start)) "$step_name")")
  step_name=$*
  step_start=$now
  [ -z "$step_name" ] || printf '\n== %s\n' "$*"
}
mkdir -p "$work"
# A build step that fails stops the script (set -e): say which, then the summary line.
trap 'echo "examples/maturin/run.sh: failed: ${step_name:-setup}" >&2; echo "0 passed, 1 failed"' ERR

step "venv ($venv)"
if [ -x "$vpy" ] && cmp -s "$here/requirements.txt" "$venv/requirements.txt"; then
  echo "up to date"
else
  "$python" -m venv --clear "$venv" || err "$python -m venv failed (Debian: apt-get install -y python3-venv)"
  "$vpy" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt" ||
    err "pip install -r requirements.txt failed (it needs PyPI)"
  cp "$here/requirements.txt" "$venv/requirements.txt"
fi
"$vpy" -c 'import sys, numpy, Cython; print("Python", sys.version.split()[0], "| NumPy", numpy.__version__, "| Cython", Cython.__version__)'

step "maturin build --release"
rm -rf "$work/wheels"
# The interpreter to build for is the venv's (--interpreter); a PYO3_PYTHON left by the
# repository's ci/ scripts is not passed on.
env -u PYO3_PYTHON "$venv/bin/maturin" build --release \
  --manifest-path "$here/Cargo.toml" --interpreter "$vpy" \
  --target-dir "$work/cargo" --out "$work/wheels"

step "pip install the wheel"
wheels=("$work"/wheels/*.whl)
if [ "${#wheels[@]}" != 1 ] || [ ! -f "${wheels[0]}" ]; then
  err "expected one wheel in $work/wheels, found: ${wheels[*]}"
fi
"$vpy" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "${wheels[0]}"

step "pip install the Cython module cyfuncs"
# Built from a copy: setuptools writes build/, cyfuncs.c and an egg-info next to its sources.
rm -rf "$work/cython"
cp -R "$here/cython" "$work/cython"
"$vpy" -m pip install --quiet --disable-pip-version-check --no-build-isolation --force-reinstall \
  --no-deps "$work/cython"

step "pytest tests/"
status=0
(cd "$here" && "$vpy" -m pytest -p no:cacheprovider -q tests "$@") 2>&1 | tee "$work/pytest.log" ||
  status=$?
# pytest's last line, e.g. "12 passed, 1 failed, 2 errors in 0.52s".
summary=$(grep -E '^=* *[0-9]+ (passed|failed|error)' "$work/pytest.log" | tail -n 1 || true)
count() { echo "$summary" | grep -oE "[0-9]+ $1" | grep -oE '^[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(($(count failed) + $(count error)))
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
if [ "$passed" = 0 ] && [ "$failed" = 0 ]; then failed=1; fi

trap - ERR
step ""
echo
echo "examples/maturin/run.sh: $(($(date +%s) - start))s:"
printf '%s\n' "${timings[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

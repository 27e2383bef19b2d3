# shellcheck shell=bash
# Shared helpers of the ci/ scripts and .ci/run (sourced, not run).
#
# Every ensure_* function installs what is missing and is idempotent. On a prerequisite it
# cannot provide, it prints ONE line "<prog>: <what is missing>: <how to get it>" to stderr
# and returns 1.
#
#   cy_releases                 the pinned releases (ci/cython-versions.txt), one a line
#   cy_newest                   the newest pinned release
#   cy_partner X                the release whose module is loaded next to X's (exchange tests)
#   cy_prerequisites            cargo, python3 and a C compiler are on PATH
#   ensure_libclang             libclang for bindgen (apt-get install libclang-dev if absent)
#   ensure_tools                .venvs/tools with uv (python3 -m venv + pip install uv)
#   ensure_cy_venv X [LOG]      .venvs/cy-X with cython==X numpy setuptools (via uv): the one
#                               venv recipe of every script
#   ensure_release X            all of the above that a test run of release X needs (its
#                               partner's venv included)
#   cy_golden_build PY BUILD J M...  compile the golden fixture modules M... with PY's Cython in
#                               BUILD (the build step of ci/gen-golden and ci/sweep)
#   cy_golden_run PY BUILD OUT ...  the golden harness on BUILD's modules, OUT its document
#   use_release X               export CYVIEW_PYTHON, PYO3_PYTHON, INSTA_UPDATE for release X
#   cy_parse_opts ...           the shared option parser (--cython X, flags, --help)
#   cy_run_counted ...          run a test command, log it, count passed/failed
#   cy_cargo_test LOG ARGS...   cargo test ARGS, logged and counted
#   cy_count_tests LOG          "PASSED FAILED" summed from cargo's "test result:" lines
#   cy_count_summary LOG        "PASSED FAILED" from the last "N passed, N failed" line
#   cy_failed_test_names LOG    the names of the tests cargo reported FAILED, one a line
#   cy_usage                    the header comment of the running script (for --help)
#   cy_err MESSAGE              "<prog>: MESSAGE" on stderr

CY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CY_PROG="${CY_PROG:-$(basename "$0")}"
CY_VENVS="$CY_ROOT/.venvs"
# The tools venv's interpreter (ci/report.py and ci/tests need only python3: the stdlib).
# shellcheck disable=SC2034
CY_TOOLS_PY="$CY_VENVS/tools/bin/python"
CY_UV="$CY_VENVS/tools/bin/uv"
# The interpreter the venvs are made from. Not CYVIEW_PYTHON: the scripts set that one.
CY_BASE_PYTHON="${CY_BASE_PYTHON:-python3}"

cy_err() { echo "$CY_PROG: $*" >&2; }

# need CMD HOW: fail in one line when CMD is not on PATH.
cy_need() {
  command -v "$1" >/dev/null 2>&1 || { cy_err "missing $1: $2"; return 1; }
}

cy_releases() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$CY_ROOT/ci/cython-versions.txt" |
    sort -t. -k1,1n -k2,2n -k3,3n
}

cy_newest() { cy_releases | tail -n 1; }

cy_prerequisites() {
  cy_need cargo "install stable Rust with rustup (https://rustup.rs)" || return 1
  cy_need "$CY_BASE_PYTHON" "install CPython 3.11 with its headers (Debian: apt-get install -y python3-dev python3-venv)" || return 1
  command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 ||
    { cy_err "missing a C compiler: apt-get update && apt-get install -y gcc"; return 1; }
}

cy_have_libclang() {
  local f
  for f in /usr/lib/llvm-*/lib/libclang.so*; do [ -e "$f" ] && return 0; done
  [ -n "${LIBCLANG_PATH:-}" ] && compgen -G "$LIBCLANG_PATH/libclang*.so*" >/dev/null && return 0
  return 1
}

ensure_libclang() {
  cy_have_libclang && return 0
  local how="apt-get update && apt-get install -y libclang-dev (or set LIBCLANG_PATH to a folder with libclang.so)"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    cy_err "missing libclang (bindgen needs it), and cannot install it here (needs root and apt-get): $how"
    return 1
  fi
  echo "$CY_PROG: installing libclang-dev (bindgen needs libclang)"
  local log="${TMPDIR:-/tmp}/cyview-apt-libclang.log"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev; } >"$log" 2>&1; then
    cy_err "installing libclang-dev with apt-get failed ($(tail -n 1 "$log")); see $log, or run: $how"
    return 1
  fi
  cy_have_libclang || { cy_err "libclang-dev installed but no /usr/lib/llvm-*/lib/libclang.so*: set LIBCLANG_PATH"; return 1; }
}

ensure_tools() {
  [ -x "$CY_UV" ] && "$CY_UV" --version >/dev/null 2>&1 && return 0
  echo "$CY_PROG: creating .venvs/tools (uv)"
  mkdir -p "$CY_VENVS"
  local log="$CY_VENVS/tools-install.log"
  if ! { "$CY_BASE_PYTHON" -m venv "$CY_VENVS/tools" &&
         "$CY_VENVS/tools/bin/pip" install --quiet uv; } >"$log" 2>&1; then
    cy_err "creating .venvs/tools with uv failed ($(tail -n 1 "$log")); see $log (python3 -m venv needs Debian's python3-venv; pip needs PyPI)"
    return 1
  fi
}

# The Cython version installed in a venv, or nothing.
cy_venv_cython() {
  [ -x "$1/bin/python" ] &&
    "$1/bin/python" -c 'import Cython, numpy, setuptools; print(Cython.__version__)' 2>/dev/null
}

# ensure_cy_venv X [LOG]: .venvs/cy-X with cython==X numpy setuptools. Skips when the venv
# already has Cython X (and NumPy and setuptools). Serialised with flock against other runs.
ensure_cy_venv() {
  local x="$1" log="${2:-$CY_VENVS/cy-$1.install.log}"
  local venv="$CY_VENVS/cy-$x"
  [ "$(cy_venv_cython "$venv")" = "$x" ] && return 0
  ensure_tools || return 1
  mkdir -p "$CY_VENVS" "$(dirname "$log")"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    [ "$(cy_venv_cython "$venv")" = "$x" ] && exit 0
    echo "$CY_PROG: creating .venvs/cy-$x (cython==$x numpy setuptools)"
    export UV_PYTHON_DOWNLOADS=never
    {
      "$CY_UV" venv --quiet --clear --python "$(command -v "$CY_BASE_PYTHON")" "$venv" &&
        "$CY_UV" pip install --quiet --python "$venv/bin/python" "cython==$x" numpy setuptools
    } >"$log" 2>&1 || {
      rm -rf "$venv"  # absent or broken before: leave no half-made venv behind
      cy_err "creating .venvs/cy-$x failed: $(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | sed 's/^[[:space:]]*//') (log: $log)"
      exit 1
    }
    have=$(cy_venv_cython "$venv")
    [ "$have" = "$x" ] || { cy_err ".venvs/cy-$x has Cython '${have:-none}', expected $x (log: $log)"; exit 1; }
  ) 9>"$CY_VENVS/.cy-$x.lock"
}

# cy_golden_build PY BUILD JOBS MODULE...: compiles the golden fixture modules (golden_core,
# golden_validate, live_slice_s, live_slice_g) with PY's Cython in BUILD (cythonize -i -jJOBS,
# CFLAGS=-O1, default directives) and copies the compile probes to BUILD/probes. A module's
# .pyx is copied only when it changed, so that cythonize skips what it built before. The
# compiler's output goes to BUILD/build.log; on failure it returns 1 (the log says why).
cy_golden_build() {
  local py build=$2 jobs=$3 m src
  py=$(cy_abspath "$1")
  shift 3
  mkdir -p "$build/probes"
  for m in "$@"; do
    case "$m" in
      golden_*) src="$CY_ROOT/cython_fixtures/golden/$m.pyx" ;;
      *) src="$CY_ROOT/cython_fixtures/$m.pyx" ;;
    esac
    cmp -s "$src" "$build/$m.pyx" || cp "$src" "$build/$m.pyx"
  done
  rm -f "$build"/golden_slice_* "$build"/probes/*.pyx "$build"/probes/*.c
  cp "$CY_ROOT"/cython_fixtures/golden/probes/*.pyx "$build/probes/"
  # shellcheck disable=SC2046  # one word per module
  ( cd "$build" && CFLAGS="-O1" "$py" -m Cython.Build.Cythonize -i "-j$jobs" -q \
      $(printf '%s.pyx ' "$@") >build.log 2>&1 )
}

# cy_golden_run PY BUILD OUT [ARG...]: cython_fixtures/golden/golden_run.py run on the modules
# of BUILD (compiled by cy_golden_build), writing that release's golden document to OUT; ARGs
# go to the harness (--no-compiled-slices).
cy_golden_run() {
  local py=$1 build=$2 out=$3
  shift 3
  "$py" "$CY_ROOT/cython_fixtures/golden/golden_run.py" run --build "$build" --out "$out" "$@"
}

# cy_abspath PATH: PATH made absolute (not resolving symbolic links: a venv's python stays it).
cy_abspath() {
  case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}

# cy_partner X: the release whose exchange module is loaded next to X's (tests/exchange.rs,
# mixed releases): the oldest pinned release, or the newest when X is the oldest.
cy_partner() {
  local oldest
  oldest=$(cy_releases | head -n 1)
  if [ "$1" = "$oldest" ]; then cy_newest; else echo "$oldest"; fi
}

use_release() {
  local partner
  partner=$(cy_partner "$1")
  export CYVIEW_OTHER_PYTHON="$CY_VENVS/cy-$partner/bin/python"
  export CYVIEW_PYTHON="$CY_VENVS/cy-$1/bin/python"
  export PYO3_PYTHON="$CYVIEW_PYTHON"
  export INSTA_UPDATE=no
}

# ensure_release X: everything a test run of release X needs: cargo, python3 and a C
# compiler, libclang, .venvs/tools, .venvs/cy-X and the venv of X's partner release.
ensure_release() {
  cy_prerequisites && ensure_libclang && ensure_tools && ensure_cy_venv "$1" &&
    ensure_cy_venv "$(cy_partner "$1")"
}

# cy_usage: the header comment of the running script (its lines 2.. up to the first line
# that is not a comment), without the leading "# ".
cy_usage() {
  awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$0"
}

# cy_parse_opts [--multi] [FLAG...] -- ARG...: the options of ci/test, ci/matrix, ci/valgrind.
#   --cython X, --cython=X   a release: appended to the array cy_opt_cython; without --multi a
#                            later --cython replaces an earlier one (cy_opt_cython holds one)
#   FLAG, e.g. --no-golden   a flag the script accepts: sets cy_opt_no_golden=1 (the flag's
#                            name without its dashes, - as _); each FLAG defaults to 0
#   -h, --help               prints cy_usage and exits 0
# Anything else: "<prog>: unknown argument: A (see <prog> --help)" and exit 2. --cython
# without a version: "<prog>: --cython needs a version, e.g. --cython 3.3.1" and exit 2.
cy_parse_opts() {
  local multi=0 flags=() f known
  cy_opt_cython=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case "$1" in
      --multi) multi=1 ;;
      --*) flags+=("$1"); printf -v "$(cy_opt_var "$1")" 0 ;;
    esac
    shift
  done
  [ $# -gt 0 ] && shift  # the --
  while [ $# -gt 0 ]; do
    case "$1" in
      --cython|--cython=*)
        local x
        if [ "$1" = --cython ]; then
          [ $# -ge 2 ] || { cy_err "--cython needs a version, e.g. --cython 3.3.1"; exit 2; }
          x=$2; shift
        else
          x=${1#--cython=}
        fi
        if [ "$multi" = 1 ]; then cy_opt_cython+=("$x"); else cy_opt_cython=("$x"); fi
        shift ;;
      -h|--help) cy_usage; exit 0 ;;
      *)
        known=0
        for f in ${flags[@]+"${flags[@]}"}; do
          if [ "$1" = "$f" ]; then printf -v "$(cy_opt_var "$f")" 1; known=1; fi
        done
        [ "$known" = 1 ] || { cy_err "unknown argument: $1 (see $CY_PROG --help)"; exit 2; }
        shift ;;
    esac
  done
}

# cy_opt_var --some-flag: the variable cy_parse_opts sets for it (cy_opt_some_flag).
cy_opt_var() {
  local v=${1#--}
  echo "cy_opt_${v//-/_}"
}

# cy_run_counted COUNTER LOG CMD...: runs CMD with its stdout and stderr into LOG (and onto
# stdout too, unless CY_QUIET=1), then sets
#   cy_status              CMD's exit status
#   cy_passed, cy_failed   the counts "COUNTER LOG" prints (cy_count_tests for cargo's output,
#                          cy_count_summary for a ci/ script's), where a command that failed
#                          without a failure counted counts as one failure: a build failure
#                          prints no "test result:" line.
# It returns 0 whatever CMD did (so it is safe under set -e): read cy_status.
cy_run_counted() {
  local counter=$1 log=$2 errexit=0
  shift 2
  mkdir -p "$(dirname "$log")"
  case $- in *e*) errexit=1 ;; esac
  set +e
  if [ "${CY_QUIET:-0}" = 1 ]; then
    "$@" >"$log" 2>&1
    cy_status=$?
  else
    "$@" 2>&1 | tee "$log"
    cy_status=${PIPESTATUS[0]}
  fi
  [ "$errexit" = 0 ] || set -e
  # shellcheck disable=SC2034  # cy_passed is for the caller
  read -r cy_passed cy_failed < <("$counter" "$log")
  if [ "$cy_status" != 0 ] && [ "$cy_failed" = 0 ]; then cy_failed=1; fi
  return 0
}

# cy_cargo_test LOG ARGS...: cargo test ARGS through cy_run_counted (cy_status, cy_passed,
# cy_failed; CY_QUIET=1 to keep it off stdout).
cy_cargo_test() {
  local log=$1
  shift
  cy_run_counted cy_count_tests "$log" cargo test "$@"
}

# Sum the counts of cargo's "test result:" lines in a log: prints "PASSED FAILED".
cy_count_tests() {
  grep -E '^test result: ' "$1" |
    sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed;.*/\1 \2/' |
    awk '{p+=$1; f+=$2} END {print p+0, f+0}'
}

# The last "N passed, N failed" line of a ci/ script's log: prints "PASSED FAILED" ("0 1" when
# there is none: the script stopped before its summary).
cy_count_summary() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1) || true
  line=${line:-0 passed, 1 failed}
  line=${line/ passed, / }
  echo "${line% failed}"
}

# The names of the tests that cargo reported FAILED in a log, sorted, one a line.
cy_failed_test_names() {
  { grep -oE 'test [^ ]+ \.\.\. FAILED' "$1" || true; } | awk '{print $2}' | sort -u
}

# Shared helpers of ci/test and ci/matrix (sourced, not run).
#
# Every function installs what is missing and is idempotent. On a prerequisite it cannot
# provide, it prints ONE line "<prog>: <what is missing>: <how to get it>" to stderr and
# returns 1.
#
#   cy_releases                 the pinned releases (ci/cython-versions.txt), one a line
#   cy_newest                   the newest pinned release
#   ensure_libclang             libclang for bindgen (apt-get install libclang-dev if absent)
#   ensure_tools                .venvs/tools with uv (python3 -m venv + pip install uv)
#   ensure_cy_venv X [LOG]      .venvs/cy-X with cython==X numpy setuptools (via uv)
#   use_release X               export CYVIEW_PYTHON, PYO3_PYTHON, INSTA_UPDATE for release X

CY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CY_PROG="${CY_PROG:-$(basename "$0")}"
CY_VENVS="$CY_ROOT/.venvs"
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

# cy_partner X: the release whose exchange module is loaded next to X's (tests/exchange.rs,
# mixed releases): the oldest pinned release, or the newest when X is the oldest.
cy_partner() {
  local oldest
  oldest=$(cy_releases | head -n 1)
  if [ "$1" = "$oldest" ]; then cy_newest; else echo "$oldest"; fi
}

use_release() {
  export CYVIEW_OTHER_PYTHON="$CY_VENVS/cy-$(cy_partner "$1")/bin/python"
  export CYVIEW_PYTHON="$CY_VENVS/cy-$1/bin/python"
  export PYO3_PYTHON="$CYVIEW_PYTHON"
  export INSTA_UPDATE=no
}

# Sum the counts of cargo's "test result:" lines in a log: prints "PASSED FAILED".
cy_count_tests() {
  grep -E '^test result: ' "$1" |
    sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed;.*/\1 \2/' |
    awk '{p+=$1; f+=$2} END {print p+0, f+0}'
}

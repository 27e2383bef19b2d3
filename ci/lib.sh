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
#                               venv recipe of every script (a release that does not install
#                               is retried as pure Python, marked in .venvs/cy-X/cyview-install)
#   cy_spec_resolve SPEC        what a --cython SPEC names (a version, an sdist, a wheel, a
#                               source checkout, VERSION+patch:FILE): sets cy_spec_kind,
#                               cy_spec_key (the venv is .venvs/cy-<key>), cy_spec_label, ...
#   ensure_spec_venv SPEC [LOG] .venvs/cy-<key> for SPEC (ensure_cy_venv for a version; for the
#                               others Cython built from that source, not compiled)
#   cy_spec_absolute SPEC DIR   SPEC with its relative path made absolute against DIR
#   cy_patched_newest           the SPEC of the newest release with its cython_patches/ fixes
#   cy_spec_meta KEY            the source of .venvs/cy-KEY as key=value lines (source_*)
#   ensure_release X            all of the above that a test run of release X needs (its
#                               partner's venv included)
#   cy_golden_build PY BUILD J M...  compile the golden fixture modules M... with PY's Cython in
#                               BUILD (the build step of ci/gen-golden and ci/probe)
#   cy_golden_run PY BUILD OUT ...  the golden harness on BUILD's modules, OUT its document
#   cy_build_extractor          cargo build of extract_layouts; CY_EXTRACT is its binary
#   use_release KEY             export CYVIEW_PYTHON, PYO3_PYTHON, INSTA_UPDATE for .venvs/cy-KEY
#                               (a version, or a SPEC's key)
#   cy_parse_opts ...           the shared option parser (--cython SPEC, flags, --help)
#   cy_run_counted ...          run a test command, log it, count passed/failed
#   cy_cargo_test LOG ARGS...   cargo test ARGS, logged and counted
#   cy_count_tests LOG          "PASSED FAILED" summed from cargo's "test result:" lines
#   cy_count_summary LOG        "PASSED FAILED" from the last "N passed, N failed" line
#   cy_failed_test_names LOG    the names of the tests cargo reported FAILED, one a line
#   cy_usage                    the header comment of the running script (for --help)
#   cy_err MESSAGE              "<prog>: MESSAGE" on stderr
#   cy_disk                     one line: the free space where target/ is, and what target/
#                               and .venvs take
#
# Every script that sources this file builds with CARGO_INCREMENTAL=0 and
# CARGO_PROFILE_DEV_DEBUG=line-tables-only unless the environment sets them: a one-off build
# gains nothing from incremental data, and line tables keep file:line in panics and valgrind
# stacks. Together they cut what a fresh `.ci/run` writes to target/ by more than half (see
# README "CI"); the CI machine once ran out of disk without them.

CY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CY_PROG="${CY_PROG:-$(basename "$0")}"
CY_VENVS="$CY_ROOT/.venvs"
# The tools venv's interpreter (ci/report.py and ci/tests need only python3: the stdlib).
# shellcheck disable=SC2034
CY_TOOLS_PY="$CY_VENVS/tools/bin/python"
CY_UV="$CY_VENVS/tools/bin/uv"
# The interpreter the venvs are made from. Not CYVIEW_PYTHON: the scripts set that one.
CY_BASE_PYTHON="${CY_BASE_PYTHON:-python3}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_PROFILE_DEV_DEBUG="${CARGO_PROFILE_DEV_DEBUG:-line-tables-only}"

# cy_disk: "disk: N MiB free; target/ N MiB, .venvs N MiB" (target/ is CARGO_TARGET_DIR's).
cy_disk() {
  local target="${CARGO_TARGET_DIR:-$CY_ROOT/target}" free t v
  mkdir -p "$target"
  free=$(df -Pm "$target" | awk 'NR == 2 { print $4 }')
  t=$(du -sm "$target" 2>/dev/null | cut -f1)
  v=$(du -sm "$CY_VENVS/" 2>/dev/null | cut -f1)
  echo "disk: ${free:-?} MiB free; target/ ${t:-0} MiB, .venvs ${v:-0} MiB"
}

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
      # Old releases (0.27 to 0.29.14) have no wheel for this Python, and building their
      # sdist compiles Cython with code this Python rejects (collections.Iterable): install
      # it uncompiled instead (pure Python; slower, same C). Only tried when the normal
      # install failed, so a venv that installs normally never gets here; the venv records it
      # in cyview-install (which ci/probe and ci/timeline.py report).
      echo "$CY_PROG: cython==$x did not install; trying it as pure Python (--no-cython-compile)"
      {
        echo "--- the normal install failed; retrying cython==$x as pure Python (--no-cython-compile)"
        "$CY_UV" venv --quiet --clear --python "$(command -v "$CY_BASE_PYTHON")" "$venv" &&
          "$CY_UV" pip install --quiet --python "$venv/bin/python" numpy setuptools wheel &&
          NO_CYTHON_COMPILE=true "$CY_UV" pip install --quiet --python "$venv/bin/python" \
            --no-build-isolation --no-binary cython -C--build-option=--no-cython-compile "cython==$x" &&
          "$venv/bin/python" -c 'import Cython.Compiler.Main' &&
          echo "pure-python" >"$venv/cyview-install"
      } >>"$log" 2>&1
    } || {
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
  # A release installed as pure Python (ensure_cy_venv's fallback: 0.27 to 0.29.14) uses the
  # collections ABC aliases that Python 3.10 removed; its cythonize runs with them restored.
  local run=(-m Cython.Build.Cythonize)
  if [ "$(cat "$(dirname "$py")/../cyview-install" 2>/dev/null)" = pure-python ]; then
    run=(-c 'import collections, collections.abc, sys
for n in ("Iterable", "Mapping", "MutableMapping", "Sequence", "Hashable", "Callable"):
    setattr(collections, n, getattr(collections.abc, n))
from Cython.Build.Cythonize import main
main(sys.argv[1:])')
  fi
  # shellcheck disable=SC2046  # one word per module
  ( cd "$build" && CFLAGS="-O1" "$py" "${run[@]}" -i "-j$jobs" -q \
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

# cy_build_extractor: builds cyview-build's example extract_layouts (release) and sets
# CY_EXTRACT to the binary (ci/sweep, ci/diff; ci/probe takes it as --extract).
cy_build_extractor() {
  # shellcheck disable=SC2034  # for the caller
  CY_EXTRACT="${CARGO_TARGET_DIR:-$CY_ROOT/target}/release/examples/extract_layouts"
  echo "$CY_PROG: building the layout extractor (cargo build --release -p cyview-build --example extract_layouts)"
  ( cd "$CY_ROOT" && cargo build --quiet --release -p cyview-build --example extract_layouts )
}

# cy_partner X: the release whose exchange module is loaded next to X's (tests/exchange.rs,
# mixed releases): the oldest pinned release, or the newest when X is the oldest. X is a
# version, or the key of a SPEC's venv (then the version of the Cython installed there).
cy_partner() {
  local oldest x=$1
  cy_is_version "$x" || x=$(cy_venv_cython "$CY_VENVS/cy-$x")
  oldest=$(cy_releases | head -n 1)
  if [ "$x" = "$oldest" ]; then cy_newest; else echo "$oldest"; fi
}

# cy_is_version S: S looks like a Cython version (3.3.1, 3.4.0a1, 3.1.0rc2), not a path.
cy_is_version() {
  [[ $1 =~ ^[0-9]+(\.[0-9]+)+((a|b|rc)[0-9]+)?(\.(post|dev)[0-9]+)?$ ]]
}

# cy_sha256 FILE: the file's SHA-256 (hex).
cy_sha256() {
  sha256sum "$1" | awk '{print $1}'
}

# cy_tree_sha256 DIR: the SHA-256 of a source tree's content (every file's path and bytes;
# without .git, __pycache__, build/, dist/, *.egg-info and compiled files).
cy_tree_sha256() {
  "$CY_BASE_PYTHON" - "$1" <<'PY'
import hashlib, os, sys
root, h = sys.argv[1], hashlib.sha256()
skip_dirs = {".git", "__pycache__", "build", "dist"}
for d, dirs, files in os.walk(root):
    dirs[:] = sorted(x for x in dirs if x not in skip_dirs and not x.endswith(".egg-info"))
    for f in sorted(files):
        if f.endswith((".pyc", ".so", ".o", ".pyd")):
            continue
        p = os.path.join(d, f)
        h.update(os.path.relpath(p, root).encode() + b"\0")
        if os.path.islink(p):
            h.update(os.readlink(p).encode())
        else:
            with open(p, "rb") as fh:
                h.update(fh.read())
        h.update(b"\0")
print(h.hexdigest())
PY
}

# cy_spec_resolve SPEC: what a --cython SPEC names. SPEC is one of
#   X                      a Cython version (pinned in ci/cython-versions.txt or not): cython==X
#                          from PyPI, in .venvs/cy-X
#   PATH.tar.gz, PATH.zip  a Cython sdist                 .venvs/cy-src-<sha256 of the file>
#   PATH.whl               a Cython wheel                 .venvs/cy-whl-<sha256 of the file>
#   DIR                    a Cython source checkout (a folder with Cython/ and setup.py)
#                                                         .venvs/cy-src-<sha256 of its content>
#   X+patch:FILE[,FILE..]  PyPI's sdist of Cython X with the patches applied in order (patch
#                          -p1; a patch may add a local label to the version: X+LABEL)
#                                                         .venvs/cy-patch-<sha256 of X and FILEs>
# (12 hex digits of each sha256). Sets cy_spec_kind (version | sdist | wheel | checkout |
# patch), cy_spec_key, cy_spec_label (in words, for people), cy_spec_version (version, patch),
# cy_spec_path (absolute; sdist, wheel, checkout), cy_spec_sha256 (sdist, wheel; a checkout's
# content), cy_spec_rev (a checkout's git revision, "-dirty" when it has changes), cy_spec_patch
# and cy_spec_patch_sha256 (patch). On a SPEC it cannot read: one line on stderr, returns 1.
cy_spec_resolve() {
  local spec=$1
  cy_spec_kind='' cy_spec_key='' cy_spec_label='' cy_spec_version='' cy_spec_path=''
  cy_spec_sha256='' cy_spec_rev='' cy_spec_patch='' cy_spec_patch_sha256=''
  if cy_is_version "$spec"; then
    cy_spec_kind=version cy_spec_key=$spec cy_spec_version=$spec
    cy_spec_label="cython==$spec from PyPI"
    return 0
  fi
  if [[ $spec == *+patch:* ]]; then
    cy_spec_version=${spec%%+patch:*}
    cy_is_version "$cy_spec_version" ||
      { cy_err "--cython $spec: '$cy_spec_version' is not a Cython version (the form is VERSION+patch:FILE[,FILE...], e.g. 3.3.1+patch:cython_patches/fix.patch)"; return 1; }
    local files=() f abs=()
    IFS=, read -r -a files <<<"${spec#*+patch:}"
    [ ${#files[@]} -gt 0 ] || { cy_err "--cython $spec: no patch file named"; return 1; }
    for f in "${files[@]}"; do
      [ -f "$f" ] || { cy_err "--cython $spec: no such patch file: $f"; return 1; }
      abs+=("$(cd "$(dirname "$f")" && pwd)/$(basename "$f")")
    done
    cy_spec_patch=$(IFS=,; echo "${abs[*]}")
    # One sha256 over the patches' contents, in the order they are applied.
    cy_spec_patch_sha256=$(cat "${abs[@]}" | sha256sum | cut -d' ' -f1)
    cy_spec_kind='patch'
    cy_spec_key=patch-$(printf '%s\n%s\n' "$cy_spec_version" "$cy_spec_patch_sha256" | sha256sum | cut -c1-12)
    cy_spec_label="PyPI sdist of Cython $cy_spec_version with ${cy_spec_patch//,/ and } (sha256 $cy_spec_patch_sha256)"
    return 0
  fi
  if [ -d "$spec" ]; then
    cy_spec_path=$(cd "$spec" && pwd)
    if [ ! -d "$cy_spec_path/Cython" ] || [ ! -f "$cy_spec_path/setup.py" ]; then
      cy_err "--cython $spec: not a Cython source checkout (a folder with Cython/ and setup.py)"
      return 1
    fi
    cy_spec_kind=checkout
    cy_spec_sha256=$(cy_tree_sha256 "$cy_spec_path") || return 1
    cy_spec_key=src-${cy_spec_sha256:0:12}
    if cy_spec_rev=$(git -C "$cy_spec_path" rev-parse HEAD 2>/dev/null); then
      [ -z "$(git -C "$cy_spec_path" status --porcelain 2>/dev/null | head -n 1)" ] ||
        cy_spec_rev="$cy_spec_rev-dirty"
    else
      cy_spec_rev=
    fi
    cy_spec_label="Cython source checkout $cy_spec_path${cy_spec_rev:+ at git $cy_spec_rev} (content sha256 $cy_spec_sha256)"
    return 0
  fi
  if [ -f "$spec" ]; then
    cy_spec_path=$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")
    cy_spec_sha256=$(cy_sha256 "$cy_spec_path")
    case "$spec" in
      *.whl) cy_spec_kind=wheel cy_spec_key=whl-${cy_spec_sha256:0:12}
             cy_spec_label="Cython wheel $cy_spec_path (sha256 $cy_spec_sha256)" ;;
      *.tar.gz|*.tgz|*.zip)
             cy_spec_kind=sdist cy_spec_key=src-${cy_spec_sha256:0:12}
             cy_spec_label="Cython sdist $cy_spec_path (sha256 $cy_spec_sha256)" ;;
      *) cy_err "--cython $spec: a file, but not an sdist (.tar.gz, .zip) or a wheel (.whl)"; return 1 ;;
    esac
    return 0
  fi
  if [[ $spec == */* || $spec == *.tar.gz || $spec == *.whl || $spec == *.zip ]]; then
    cy_err "--cython $spec: no such file or folder"
  else
    cy_err "--cython $spec: not a Cython version (e.g. 3.3.1), an sdist (.tar.gz), a wheel (.whl), a source checkout (a folder with Cython/ and setup.py) or VERSION+patch:FILE"
  fi
  return 1
}

# cy_patched_newest: the SPEC of the newest pinned release with its fixes in cython_patches/
# (cython-X-*.patch, applied in name order): X+patch:A,B... (ci/matrix --cython-patch,
# ci/diff --patch). Without such a patch: one line on stderr, returns 1.
cy_patched_newest() {
  local newest list
  newest=$(cy_newest)
  list=$(find "$CY_ROOT/cython_patches" -maxdepth 1 -name "cython-$newest-*.patch" | sort | paste -sd, -)
  [ -n "$list" ] || { cy_err "no cython_patches/cython-$newest-*.patch for the newest release $newest"; return 1; }
  echo "$newest+patch:$list"
}

# cy_spec_absolute SPEC DIR: SPEC with a relative path in it (a file, a folder, the FILE of
# X+patch:FILE) that exists in DIR made absolute against DIR; anything else as it is (for
# cy_spec_resolve to judge).
cy_spec_absolute() {
  local spec=$1 dir=$2 file
  if [[ $spec == *+patch:* ]]; then
    local files=() made=()
    IFS=, read -r -a files <<<"${spec#*+patch:}"
    for file in "${files[@]}"; do
      if [[ $file != /* ]] && [ -e "$dir/$file" ]; then made+=("$dir/$file"); else made+=("$file"); fi
    done
    spec=${spec%%+patch:*}+patch:$(IFS=,; echo "${made[*]}")
  elif ! cy_is_version "$spec" && [[ $spec != /* ]] && [ -e "$dir/$spec" ]; then
    spec=$dir/$spec
  fi
  echo "$spec"
}

# cy_spec_meta KEY: where the Cython of .venvs/cy-KEY comes from, as key=value lines:
# source (in words), source_kind, source_spec, and as they apply source_path, source_sha256,
# source_rev, source_version, source_sdist_sha256, source_patch, source_patch_sha256 (what
# ensure_spec_venv recorded), and cython_compiled (true: Cython's own modules are compiled).
cy_spec_meta() {
  local venv="$CY_VENVS/cy-$1"
  if [ -f "$venv/cyview-source" ]; then
    cat "$venv/cyview-source"
  else
    printf 'source=cython==%s from PyPI\nsource_kind=version\nsource_spec=%s\nsource_version=%s\n' "$1" "$1" "$1"
  fi
  echo "cython_compiled=$("$venv/bin/python" -c 'import Cython.Compiler.Scanning as m; print(str(not m.__file__.endswith(".py")).lower())' 2>/dev/null || echo unknown)"
}

# ensure_spec_venv SPEC [LOG]: the venv of a --cython SPEC (see cy_spec_resolve), and sets
# cy_spec_* as cy_spec_resolve does. A version: ensure_cy_venv. An sdist, a checkout or a
# patched release: .venvs/cy-<key> with numpy setuptools, and Cython installed from a copy of
# that source tree WITHOUT compiling Cython itself (NO_CYTHON_COMPILE=true, and setup.py's
# --no-cython-compile as a PEP 517 build option for 0.29: pure Python, the same behaviour;
# measured for 3.3.1, 6 s instead of 2 min 56 s compiled). A wheel: installed as it is. The venv records its source
# in .venvs/cy-<key>/cyview-source (cy_spec_meta). Serialised with flock like ensure_cy_venv.
ensure_spec_venv() {
  local spec=$1
  cy_spec_resolve "$spec" || return 1
  if [ "$cy_spec_kind" = version ]; then
    ensure_cy_venv "$cy_spec_version" ${2:+"$2"}
    return
  fi
  local key=$cy_spec_key venv="$CY_VENVS/cy-$cy_spec_key"
  local log=${2:-$CY_VENVS/cy-$key.install.log}
  [ -f "$venv/cyview-source" ] && [ -n "$(cy_venv_cython "$venv")" ] && return 0
  ensure_tools || return 1
  mkdir -p "$CY_VENVS" "$(dirname "$log")"
  (
    if command -v flock >/dev/null 2>&1; then flock 9; fi
    [ -f "$venv/cyview-source" ] && [ -n "$(cy_venv_cython "$venv")" ] && exit 0
    echo "$CY_PROG: creating .venvs/cy-$key ($cy_spec_label)"
    work=$(mktemp -d "${TMPDIR:-/tmp}/cyview-spec.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    fail() {
      rm -rf "$venv"  # leave no half-made venv behind
      cy_err "creating .venvs/cy-$key ($cy_spec_label) failed: $1 (log: $log)"
      exit 1
    }
    last() { grep -v '^[[:space:]]*$' "$log" | tail -n 1 | sed 's/^[[:space:]]*//'; }
    : >"$log"
    { UV_PYTHON_DOWNLOADS=never "$CY_UV" venv --quiet --clear --python "$(command -v "$CY_BASE_PYTHON")" "$venv" &&
        "$CY_UV" pip install --quiet --python "$venv/bin/python" numpy setuptools wheel; } >>"$log" 2>&1 ||
      fail "$(last)"
    src=
    sdist_sha=
    case "$cy_spec_kind" in
      sdist|patch)
        if [ "$cy_spec_kind" = patch ]; then
          echo "downloading the sdist of cython==$cy_spec_version" >>"$log"
          "$CY_VENVS/tools/bin/pip" download --quiet --no-deps --no-binary :all: \
              "cython==$cy_spec_version" -d "$work/dl" >>"$log" 2>&1 || fail "pip download: $(last)"
          archive=$(find "$work/dl" -maxdepth 1 -type f | head -n 1)
          [ -n "$archive" ] || fail "pip download left no sdist"
        else
          archive=$cy_spec_path
        fi
        sdist_sha=$(cy_sha256 "$archive")
        mkdir -p "$work/x"
        case "$archive" in
          *.zip) "$CY_BASE_PYTHON" -m zipfile -e "$archive" "$work/x" ;;
          *) tar -xzf "$archive" -C "$work/x" ;;
        esac >>"$log" 2>&1 || fail "cannot unpack $archive: $(last)"
        src=$(find "$work/x" -mindepth 1 -maxdepth 1 -type d | head -n 1)
        if [ -z "$src" ] || [ ! -f "$src/setup.py" ]; then fail "$archive holds no folder with setup.py"; fi
        if [ "$cy_spec_kind" = patch ]; then
          IFS=, read -r -a patches <<<"$cy_spec_patch"
          for p in "${patches[@]}"; do
            echo "patch -p1 < $p" >>"$log"
            patch -p1 --batch --forward -d "$src" <"$p" >>"$log" 2>&1 ||
              fail "$p does not apply to Cython $cy_spec_version's sdist: $(last)"
          done
        fi ;;
      checkout)
        src=$work/src
        mkdir -p "$src"
        tar -C "$cy_spec_path" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
            -cf - . | tar -C "$src" -xf - >>"$log" 2>&1 || fail "cannot copy $cy_spec_path: $(last)"
        ;;
    esac
    t=$(date +%s)
    if [ "$cy_spec_kind" = wheel ]; then
      "$CY_UV" pip install --quiet --python "$venv/bin/python" "$cy_spec_path" >>"$log" 2>&1 ||
        fail "$(last)"
    else
      NO_CYTHON_COMPILE=true "$CY_UV" pip install --quiet --no-cache --no-build-isolation \
          --python "$venv/bin/python" -C--build-option=--no-cython-compile "$src" >>"$log" 2>&1 ||
        fail "$(last)"
    fi
    echo "installed Cython from $cy_spec_kind in $(( $(date +%s) - t ))s" >>"$log"
    have=$(cy_venv_cython "$venv")
    [ -n "$have" ] || fail "Cython does not import in the new venv"
    # A patch may add a local label to the version (3.3.1+cyview.slice1), nothing else.
    if [ "$cy_spec_kind" = patch ] && [ "$have" != "$cy_spec_version" ] &&
       [[ $have != "$cy_spec_version+"* ]]; then
      fail "the patched sdist installs Cython '$have', expected $cy_spec_version (or $cy_spec_version+LABEL)"
    fi
    {
      echo "source=$cy_spec_label"
      echo "source_kind=$cy_spec_kind"
      echo "source_spec=$spec"
      [ -z "$cy_spec_path" ] || echo "source_path=$cy_spec_path"
      [ -z "$cy_spec_sha256" ] || echo "source_sha256=$cy_spec_sha256"
      [ -z "$cy_spec_rev" ] || echo "source_rev=$cy_spec_rev"
      [ -z "$cy_spec_version" ] || echo "source_version=$cy_spec_version"
      [ "$cy_spec_kind" != patch ] || echo "source_sdist_sha256=$sdist_sha"
      [ -z "$cy_spec_patch" ] || echo "source_patch=$cy_spec_patch"
      [ -z "$cy_spec_patch_sha256" ] || echo "source_patch_sha256=$cy_spec_patch_sha256"
    } >"$venv/cyview-source"
  ) 9>"$CY_VENVS/.cy-$key.lock"
}

# use_release KEY: the environment of a test run with .venvs/cy-KEY (KEY: a version, or the
# key of a SPEC's venv, see cy_spec_resolve) and its partner release's venv.
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
#   --cython X, --cython=X   a release (ci/matrix: any SPEC of cy_spec_resolve): appended to
#                            the array cy_opt_cython; without --multi a later --cython replaces
#                            an earlier one (cy_opt_cython holds one)
#   FLAG, e.g. --no-golden   a flag the script accepts: sets cy_opt_no_golden=1 (the flag's
#                            name without its dashes, - as _); each FLAG defaults to 0
#   -h, --help               prints cy_usage and exits 0
# Anything else: "<prog>: unknown argument: A (see <prog> --help)" and exit 2. --cython
# without a value: "<prog>: --cython needs a version, e.g. --cython 3.3.1" and exit 2.
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

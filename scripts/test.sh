#!/usr/bin/env bash
# The project's test command: builds everything, checks the generated C header is the committed
# one, runs the Rust tests (unit, integration, C ABI, LD_PRELOAD, crash) and the Python shim tests.
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

echo "== cargo test"
cargo test

if [ -f tests/python/run.sh ]; then
  echo "== python shim tests"
  bash tests/python/run.sh
fi
echo "== all tests passed"

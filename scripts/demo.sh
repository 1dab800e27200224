#!/usr/bin/env bash
# The main job, native edition: the guide's Quick Start flow against a stand-in C service
# (the real-vLLM demo replaces this once the vLLM handlers land). Builds the library, starts the
# service with SERVICE_PROF_CONFIG_PATH, turns capture on with the guide's sed command, turns it
# off, and reads the capture back.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet
work="${MSP_DEMO_DIR:-$(mktemp -d /tmp/msp-demo.XXXXXX)}"
mkdir -p "$work"
cc -O2 -std=c11 -D_GNU_SOURCE -I include examples/demo_service.c -o "$work/demo_service" \
   -L target/release -lms_service_profiler -Wl,-rpath,"$root/target/release" -lpthread

cd "$work"
export SERVICE_PROF_CONFIG_PATH=ms_service_profiler_config.json
rm -f "$SERVICE_PROF_CONFIG_PATH"
echo "== 1. start the service (the default config is created with \"enable\": 0)"
./demo_service 3 &
svc=$!
sleep 0.5
sed -i "s#\"prof_dir\": \"[^\"]*\"#\"prof_dir\": \"$work/prof/\"#" "$SERVICE_PROF_CONFIG_PATH"
cat "$SERVICE_PROF_CONFIG_PATH"
echo "== 2. start collection with the guide's sed command"
sed -i 's/"enable":\s*0/"enable": 1/' ./ms_service_profiler_config.json
sleep 1.5
echo "== 3. stop collection"
sed -i 's/"enable":\s*1/"enable": 0/' ./ms_service_profiler_config.json
wait "$svc"
echo "== 4. read the capture back"
run_dir=$(ls -d "$work"/prof/*/ | head -n1)
ls -l "$run_dir/Trace_Service"
"$root/target/release/msserviceprofiler" dump --input-path "$run_dir"
echo "capture in $run_dir"

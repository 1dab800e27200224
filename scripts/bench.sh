#!/usr/bin/env bash
# Native recorder benchmarks: the C-caller program (1 and 2 threads) and the criterion suite.
# Results go to stdout; docs/PERFORMANCE.md records them with machine and date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet
work=$(mktemp -d /tmp/msp-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cc -O2 -std=c11 -D_GNU_SOURCE -I include benches/c/record_bench.c -o "$work/record_bench" \
   -L target/release -lms_service_profiler -Wl,-rpath,"$root/target/release" -lpthread
# A ring big enough for every record of the run: zero drops expected.
printf '{"enable": 1, "prof_dir": "%s/prof", "ring_size_mb": 1024, "ring_total_mb": 4096}\n' "$work" > "$work/cfg.json"
echo "== C caller: $(uname -m), $(nproc) CPUs, $(date -u +%FT%TZ)"
for t in 1 2; do
  SERVICE_PROF_CONFIG_PATH="$work/cfg.json" PROF_LOG_LEVEL=WARNING "$work/record_bench" 4000000 "$t"
  rm -rf "$work/prof"
done
if [ "${1:-}" != "--c-only" ]; then
  echo "== criterion"
  cargo bench --bench record -- --warm-up-time 1 --measurement-time 3
fi

#!/usr/bin/env bash
# Parser benchmark, end to end through the CLI: writes a vLLM-shaped capture with the REAL
# recorder (benches/parse.rs in generator mode: per DP rank an API server and an EngineCore
# process, batch 16), then runs `msserviceprofiler parse` once per format set under
# /usr/bin/time -v and reports records/s and peak RSS. docs/PERFORMANCE.md records the results.
#
# Usage: scripts/bench_parse.sh [RECORDS] [PAIRS] [FORMAT-SET ...]
#   RECORDS     approximate record count (default 2000000; ≈ 0.9 KB of ring file per record)
#   PAIRS       (API server, EngineCore) process pairs = DP ranks (default 2)
#   FORMAT-SET  a quoted list passed to --format (default: "csv" "json" "perfetto" "db csv json")
# Env: MSP_BENCH_DIR (work directory, default a fresh /tmp dir, removed at exit unless set),
#      MSP_BENCH_JOBS (--jobs, default 0 = all CPUs), MSP_BENCH_GEN (an already built generator).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
records="${1:-2000000}"
pairs="${2:-2}"
shift $(( $# > 2 ? 2 : $# )) || true
if [ $# -gt 0 ]; then sets=("$@"); else sets=("csv" "json" "perfetto" "db csv json"); fi

cargo build --release --quiet --bin msserviceprofiler
gen="${MSP_BENCH_GEN:-$(cargo bench --bench parse --no-run 2>&1 | grep -o 'target/release/deps/parse-[0-9a-f]*' | tail -1)}"
[ -x "$gen" ] || { echo "could not find the benches/parse.rs binary" >&2; exit 1; }
bin="$root/target/release/msserviceprofiler"

if [ -n "${MSP_BENCH_DIR:-}" ]; then work="$MSP_BENCH_DIR"; mkdir -p "$work"; else
  work=$(mktemp -d /tmp/msp-parse-bench.XXXXXX); trap 'rm -rf "$work"' EXIT; fi
rm -rf "$work/cap" "$work/out"

echo "== $(uname -m), $(nproc) CPUs, $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
MSP_BENCH_RECORDS="$records" MSP_BENCH_PAIRS="$pairs" MSP_BENCH_KEEP="$work/cap" "$gen"
t1=$(date +%s.%N)
input_bytes=$(du -sb "$work/cap/prof" | cut -f1)
printf '== capture: %d processes, %.2f GB of capture files (%s on disk), written in %.1f s\n' \
  "$((2 * pairs))" "$(echo "$input_bytes / 1000000000" | bc -l)" "$(du -sh "$work/cap/prof" | cut -f1)" "$(echo "$t1 - $t0" | bc -l)"

printf '%-14s %12s %9s %12s %10s %10s\n' format records seconds records/s peak_RSS output
for f in "${sets[@]}"; do
  rm -rf "$work/out"
  # shellcheck disable=SC2086
  /usr/bin/time -v "$bin" parse --input-path "$work/cap/prof" --output-path "$work/out" --format $f \
    --jobs "${MSP_BENCH_JOBS:-0}" --no-progress >"$work/stdout" 2>"$work/time"
  n=$(grep -o 'parsed [0-9]* records' "$work/stdout" | grep -o '[0-9]*')
  wall=$(grep 'Elapsed (wall clock)' "$work/time" | awk '{print $NF}' | awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
  rss=$(grep 'Maximum resident set size' "$work/time" | awk '{print $NF}')
  user=$(grep 'User time' "$work/time" | awk '{print $NF}')
  sys=$(grep 'System time' "$work/time" | awk '{print $NF}')
  printf '%-14s %12d %9.2f %12.0f %8.0f MB %10s   (user %s s, sys %s s)\n' "$f" "$n" "$wall" "$(echo "$n / $wall" | bc -l)" \
    "$(echo "$rss / 1024" | bc -l)" "$(du -sh "$work/out" | cut -f1)" "$user" "$sys"
done
rm -rf "$work/out"

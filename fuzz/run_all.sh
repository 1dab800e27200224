#!/usr/bin/env bash
# Run every fuzz target for SECONDS (default 600) each, one after the other, one job each, then
# the atheris fuzzer of the expression language. Logs go to fuzz/logs/<target>.log; new corpus
# entries to fuzz/corpus/<target>/ (git ignores all but the committed seed-* files); crashes to
# fuzz/artifacts/<target>/.
#   fuzz/run_all.sh [SECONDS] [TARGET...]
# Needs: the nightly toolchain, cargo-fuzz (`cargo install cargo-fuzz`), and for `expr` a
# Python with atheris (ATHERIS_PYTHON, default /tmp/atheris/bin/python).
set -uo pipefail
cd "$(dirname "$0")"
SECS="${1:-600}"; shift || true
TARGETS=("$@"); [ ${#TARGETS[@]} -eq 0 ] && TARGETS=(record_decode meta_reader config_json parse expr)
mkdir -p logs
rc=0
for t in "${TARGETS[@]}"; do
    echo "== $t: ${SECS}s ($(date -u +%FT%TZ))"
    mkdir -p artifacts
    if [ "$t" = expr ]; then
        PYTHONPATH=../python_shim "${ATHERIS_PYTHON:-/tmp/atheris/bin/python}" atheris_expr.py corpus/expr \
            -max_total_time="$SECS" -artifact_prefix=artifacts/expr- -print_final_stats=1 > "logs/$t.log" 2>&1 || rc=1
    else
        mkdir -p "artifacts/$t"
        cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -jobs=1 -workers=1 \
            -print_final_stats=1 > "logs/$t.log" 2>&1 || rc=1
        [ -f fuzz-0.log ] && mv fuzz-0.log "logs/$t.worker.log"
    fi
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs|SUMMARY|panicked|ERROR" "logs/$t.log" "logs/$t.worker.log" 2>/dev/null | tail -4
done
exit $rc

#!/usr/bin/env bash
# On the GPU machine: one lease of the engine as committed (docs/validation.md, the leases under
# "Results today"), in two calls of one machine start, issued back to back.
#   bash gpu/lease.sh first   the engine's bench (gpu/bench_engine.py --skip-transformers, into
#                             $OUT/work/bench), the profile, the SGMV closed loop and the v02 run
#                             (about 9.5 minutes: 570 s at 045628f; RUNS_DEADLINE_S keeps it under the 10-minute limit)
#   bash gpu/lease.sh rest    the v06 and v05 runs (about 3 minutes)
# Then, on the development machine: merge the calls' work folders and install them with
# `python3 scripts/install_lease.py WORK --commit SHA --lease SHA-1` (the bench goes under
# gpu/results/, by hand). Needs GIT_COMMIT. Results: $OUT/results.tar.gz, the bench in $OUT/work/bench.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${GIT_COMMIT:?GIT_COMMIT must name the commit this tree is}"
OUT=${OUT:-/tmp/out}
case "${1:-}" in
  first)
    mkdir -p "$OUT/work"
    timeout 80 python3 gpu/bench_engine.py --skip-transformers --out "$OUT/work/bench" > "$OUT/work/bench.log" 2>&1
    echo "bench rc=$?"
    PROFILE_TIMEOUT=400 CLOSED_LOOP=1 CLOSED_LOOP_VARIANTS=sgmv RUN_SECONDS=80 RUNS_DEADLINE_S=520 \
      bash gpu/record_runs.sh --profile h200-v02-near-zipf-mixed
    [ -f "$OUT/work/bench/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| none" "$OUT/work/bench/bench.md"
    ;;
  rest)
    bash gpu/record_runs.sh h200-v06-azure-conv-zipf h200-v05-bursty-uniform-rank32
    ;;
  *)
    echo "usage: GIT_COMMIT=SHA bash gpu/lease.sh first|rest" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# On the GPU machine, one call (about 3 minutes): the weight GEMMs of the decode step by every
# variant of gpu/bench_gemm.py (cuBLAS, cuBLASLt and the Triton skinny GEMM configs, each checked
# against float64) at batch 1, 8, 16 and 32; gpu/gemm_speed_pick.py picks the Triton configs fastest
# over the wide and the narrow weights; then the engine's decode step (gpu/bench_engine.py, no
# transformers) with its own GEMMs and again with the picked ones (--decode-gemm WIDE,NARROW).
# Needs GIT_COMMIT in the environment. Results: $OUT/gemm-speed.tar.gz (gemm/, engine/,
# engine-triton/, logs).
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=gemm-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step gemm timeout 240 python3 gpu/bench_gemm.py --batches 1,8,16,32 --out "$W/gemm"
pick=$(python3 gpu/gemm_speed_pick.py "$W/gemm/gemm.csv" 2>"$W/pick.log")
cat "$W/pick.log"
step engine timeout 150 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
if [ -n "$pick" ]; then
  step engine-triton timeout 180 python3 gpu/bench_engine.py --skip-transformers --decode-gemm "$pick" \
    --out "$W/engine-triton"
fi
tail -n 8 "$W/gemm.log"
grep -h -E "^\| (1|8|16|32|64) \| none" "$W/engine/bench.md" "$W/engine-triton/bench.md" 2>/dev/null
echo "== done $(date -u +%T)"

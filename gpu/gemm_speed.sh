#!/usr/bin/env bash
# On the GPU machine, one call (about 3 minutes): the weight GEMMs of the decode step by every
# variant of gpu/bench_gemm.py (cuBLAS, cuBLASLt and the Triton skinny GEMM configs, each checked
# against float64) at batch 1, 8, 16 and 32; gpu/gemm_speed_pick.py picks the Triton config whose
# step sequence is fastest over batch 1-16; then the engine's decode step (gpu/bench_engine.py, no
# transformers) as it runs by default (the skinny GEMM up to gpu/engine/model.py SKINNY_MAX_M rows),
# with F.linear at every batch (--decode-gemm none), with the pick where it is not the default, and
# with add_rms_norm and silu_mul folded into the skinny GEMMs (--fuse-prologues, engine-fused/), and
# with the config fastest at batch 32 alone (engine-pick32/: read its rows of batch 32 and above);
# gpu/bench_prologues.py times the fused kernels alone against add_rms_norm/silu_mul + GEMM (prologues/).
# Needs GIT_COMMIT in the environment. Results: $OUT/gemm-speed.tar.gz (gemm/, engine/,
# engine-cublas/, engine-pick/, engine-fused/, engine-pick32/, prologues/, logs).
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=gemm-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step gemm timeout 240 python3 gpu/bench_gemm.py --batches 1,8,16,32 --out "$W/gemm"
pick=$(python3 gpu/gemm_speed_pick.py "$W/gemm/gemm.csv" --batches 1,8,16 2>"$W/pick.log")
pick32=$(python3 gpu/gemm_speed_pick.py "$W/gemm/gemm.csv" --batches 32 2>>"$W/pick.log")
cat "$W/pick.log"
step prologues timeout 120 python3 gpu/bench_prologues.py --out "$W/prologues"
step engine timeout 150 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
step engine-cublas timeout 150 python3 gpu/bench_engine.py --skip-transformers --decode-gemm none \
  --out "$W/engine-cublas"
default=$(sed -n 's/^SKINNY_CONFIG = "\(.*\)"/\1/p' gpu/engine/model.py)
if [ -n "$pick" ] && [ "$pick" != "$default" ]; then
  step engine-pick timeout 150 python3 gpu/bench_engine.py --skip-transformers --decode-gemm "$pick" \
    --out "$W/engine-pick"
fi
step engine-fused timeout 150 python3 gpu/bench_engine.py --skip-transformers --fuse-prologues \
  --out "$W/engine-fused"
if [ -n "$pick32" ]; then
  step engine-pick32 timeout 150 python3 gpu/bench_engine.py --skip-transformers --decode-gemm "$pick32" \
    --out "$W/engine-pick32"
fi
tail -n 8 "$W/gemm.log"
grep -E "^(qkv|gate_up|down) +m= *16 " "$W/prologues.log"
for d in engine engine-cublas engine-pick engine-fused engine-pick32; do
  [ -f "$W/$d/bench.md" ] && { echo "$d"; grep -E "^\| (1|8|16|32|64) \| none" "$W/$d/bench.md"; }
done
echo "== done $(date -u +%T)"

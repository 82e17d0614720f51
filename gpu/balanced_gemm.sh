#!/usr/bin/env bash
# On the GPU machine, one short call (about 2 minutes): the skinny GEMM with its programs sharing W's
# rows evenly, one program an SM (the kernel's BALANCED, config suffix _bal), at 32 rows. First
# gpu/bench_gemm.py --batches 32 (every GEMM of the decode step against cuBLAS / cuBLASLt,
# float64-checked), the transposed product with and without the balanced launch; then the decode
# step without LoRA at batch 16 / 24 / 32 (gpu/bench_decode_variants.py, three rotating rounds,
# logits against the default's) with the balanced GEMM for 17-32 rows under PDL (bal), and with
# gate_up and lm_head left to cuBLAS (balcb). Needs GIT_COMMIT. Results: $OUT/balanced-gemm.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=balanced-gemm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
BAL="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='tsk_n64_k128_w4_s4_sk1_ab_bal'"
BAL="$BAL;model.SKINNY_WIDE_NARROW_CONFIG='tsk_n64_k128_w4_s4_sk1_ab_bal'"
step gemm timeout 100 python3 gpu/bench_gemm.py --batches 32 --out "$W/gemm" \
  --triton-configs tsk_n64_k128_w4_s4_sk1_ab,tsk_n64_k128_w4_s4_sk1_ab_bal,tsk_n64_k128_w8_s4_sk1_ab_bal,tsk_n64_k128_w4_s3_sk1_ab_bal,tsk_n128_k64_w4_s4_sk1_ab_bal
step variants timeout 120 python3 gpu/bench_decode_variants.py --out "$W/variants" --rounds 3 --rotate \
  --batches 16,24,32 --profile-batch 32 --variant "bal:$BAL" --variant "balcb:$BAL;model.SKINNY_WIDE_CUBLAS_N=16384"
tail -n 30 "$W/gemm.log" | grep -E "^\| *(qkv|o|gate_up|down|lm_head|step)|32 " | head -40
[ -f "$W/variants/variants.md" ] && sed -n 1,12p "$W/variants/variants.md"
echo "== done $(date -u +%T)"

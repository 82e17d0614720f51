#!/usr/bin/env bash
# On the GPU machine, one call (about 7 minutes): the skinny GEMM with its programs sharing W's
# rows evenly, one program an SM (the kernel's BALANCED, config suffix _bal), at 32 rows.
#   gemm        gpu/bench_gemm.py --batches 32: every GEMM of the decode step against cuBLAS /
#               cuBLASLt, float64-checked, the transposed product with and without the balanced launch
#   variants    the decode step without LoRA at batch 16 / 24 / 32 (gpu/bench_decode_variants.py, three
#               rotating rounds, logits against the default's): the balanced GEMM for 17-32 rows under
#               PDL (bal); with gate_up and lm_head left to cuBLAS (balcb); as balcb with o_proj and
#               down_proj on the unbalanced split-K config (balq)
#   tests       the balanced kernel's and the wide rows' tests compiled (TRITON_INTERPRET=0)
#   engine-*    gpu/bench_engine.py --skip-transformers as committed (default), and with bal's and
#               balcb's settings (--set): the table of record's figures, one start
#   attention   decode attention at one warp, 1-16 splits, 12 and 24 sequences (the 12-sequence split
#               count of the one-warp default was not timed)
# Needs GIT_COMMIT. Results: $OUT/balanced-gemm.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=balanced-gemm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
BALC="tsk_n64_k128_w4_s4_sk1_ab_bal"
BAL="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='$BALC';model.SKINNY_WIDE_NARROW_CONFIG='$BALC'"
CB="model.SKINNY_WIDE_CUBLAS_N=16384"
BALQ="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='$BALC';$CB"
step gemm timeout 100 python3 gpu/bench_gemm.py --batches 32 --out "$W/gemm" \
  --triton-configs tsk_n64_k128_w4_s4_sk1_ab,$BALC,tsk_n64_k128_w8_s4_sk1_ab_bal,tsk_n64_k128_w4_s3_sk1_ab_bal,tsk_n128_k64_w4_s4_sk1_ab_bal
step variants timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants" --rounds 3 --rotate \
  --batches 16,24,32 --profile-batch 32 --variant "bal:$BAL" --variant "balcb:$BAL;$CB" --variant "balq:$BALQ"
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_wide_rows.py \
  gpu/tests/test_skinny_gemm.py -k "balanced or wide"
step engine-default timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-default"
step engine-bal timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-bal" --set "$BAL"
step engine-balcb timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-balcb" --set "$BAL;$CB"
step attention timeout 100 python3 gpu/bench_decode_attention.py --graph --family one-warp --batches 12,24 \
  --contexts 129,1024,4096 --out "$W/attention"
grep -E "^\| *(qkv|o|gate_up|down|lm_head|step)" "$W/gemm.log" | head -30
[ -f "$W/variants/variants.md" ] && sed -n 5,12p "$W/variants/variants.md"
tail -n 1 "$W/tests.log"
for e in default bal balcb; do
  echo "engine-$e"; [ -f "$W/engine-$e/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| (none|sgmv)" "$W/engine-$e/bench.md"
done
tail -n 12 "$W/attention.log"
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 9 minutes): first the tests of the new paths compiled
# (gpu/tests/test_fused_rope.py, test_wide_rows.py, test_pdl.py), then candidates for the decode step at batch 32, timed
# side by side with the engine's default in one process (gpu/bench_decode_variants.py, three rounds,
# the logits of each compared with the default's, the per-kernel time of each graph at batch 32):
# 16-token tiles from batch 32 (DECODE_TILE_LARGE), PDL between the
# engine's own kernels where cuBLAS runs the GEMMs (DECODE_PDL_CUBLAS), and the skinny GEMM's
# transposed configurations for 17-32 rows (SKINNY_WIDE_MAX_M), with gate_up and lm_head left to
# cuBLAS or not, the rotary embedding and cache write inside decode attention (DECODE_FUSED_ROPE_MAX_ROWS),
# and combinations; then the engine's logits against transformers + peft (gpu/check_engine.py --runs
# fp16,fp16_sgmv, the committed defaults) and the decode kernel at batch 8 and 16 x 4,096 tokens
# (gpu/bench_decode_attention.py --family prefetch). Needs GIT_COMMIT. Results: $OUT/b32-speed.tar.gz.
# The run at f8bc290 (gpu/results/b32-speed-h200-f8bc290/) also had decode attention asking L2 for
# o_proj's weight (l2, l2ef: with evict-first cache loads; and in l2t16pdlc, l2t16wide, all, allwide):
# slower everywhere, removed from the engine after it, so those variants run without it here
# (`git checkout f8bc290` runs them as they were).
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=b32-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
T16="attention.DECODE_TILE_LARGE=16"
WIDE="model.SKINNY_WIDE_MAX_M=32"
ROPE="model.DECODE_FUSED_ROPE_MAX_ROWS=64"
PDLC="model.DECODE_PDL_CUBLAS=True"
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_fused_rope.py \
  gpu/tests/test_wide_rows.py gpu/tests/test_pdl.py
step variants timeout 330 python3 gpu/bench_decode_variants.py --out "$W/variants" --rounds 3 --profile-batch 32 \
  --variant "t16:$T16" \
  --variant "pdlc:$PDLC" \
  --variant "rope:$ROPE" \
  --variant "wide:$WIDE" \
  --variant "widecb:$WIDE;model.SKINNY_WIDE_CUBLAS_N=16384" \
  --variant "t16pdlc:$T16;$PDLC" \
  --variant "t16wide:$T16;$WIDE" \
  --variant "all:$T16;$PDLC;$ROPE" \
  --variant "allwide:$T16;$WIDE;$ROPE"
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_sgmv --out "$W/check"
step attention-4096 timeout 80 python3 gpu/bench_decode_attention.py --graph --family prefetch --batches 8,16 \
  --contexts 4096 --out "$W/attention-4096"
tail -n 1 "$W/tests.log"
grep -E "^fp16(_sgmv)?:|decode_kernel|pass" "$W/check.log" | tail -n 4
tail -n 4 "$W/attention-4096.log"
[ -f "$W/variants/variants.md" ] && cat "$W/variants/variants.md"
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes) after the engine's decode defaults changed to one
# warp a program in decode attention (attention.DECODE_WARPS 1, DECODE_TARGET_PROGRAMS 1,024,
# DECODE_MAX_SPLITS 16) and the rotary embedding inside it at every decode pass
# (model.DECODE_FUSED_ROPE_MAX_ROWS 128), chosen from gpu/results/attention-one-warp-h200-0e30e11/:
# the tests of the fused paths compiled; the engine's logits against transformers + peft
# (gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl); the step without LoRA against the engine
# before (old), the old split rule (split512), 16-token tiles below 32 sequences (t16) and the
# rope fusion up to 16 rows only (rope16), three rotating rounds at 128 + 1 and 1,024 + 1 tokens
# (gpu/bench_decode_variants.py); the engine's bench (gpu/bench_engine.py, with SGMV LoRA and
# prefill). Needs GIT_COMMIT. Results: $OUT/one-warp-confirm.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=one-warp-confirm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
SPLIT512="attention.DECODE_TARGET_PROGRAMS=512;attention.DECODE_MAX_SPLITS=8"
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_fused_rope.py \
  gpu/tests/test_wide_rows.py gpu/tests/test_pdl.py
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl --out "$W/check"
for ctx in 128 1024; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 1,8,16,32,64,128 --profile-batch 32 \
    --variant "old:attention.DECODE_WARPS=2;$SPLIT512;model.DECODE_FUSED_ROPE_MAX_ROWS=16" \
    --variant "split512:$SPLIT512" \
    --variant "t16:attention.DECODE_TILE=16;attention.DECODE_TILE_LARGE=32" \
    --variant "rope16:model.DECODE_FUSED_ROPE_MAX_ROWS=16"
done
step engine timeout 120 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
tail -n 1 "$W/tests.log"
grep -E "^fp16(_sgmv)?(_nopdl)?:" "$W/check.log" | cut -c1-60
[ -f "$W/engine/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| (none|sgmv)" "$W/engine/bench.md"
for ctx in 128 1024; do [ -f "$W/variants-$ctx/variants.md" ] && sed -n 5,12p "$W/variants-$ctx/variants.md"; done
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 8 minutes) after the engine's decode defaults changed to the
# rotary embedding and cache write inside decode attention up to 16 rows
# (model.DECODE_FUSED_ROPE_MAX_ROWS) and 16-token attention tiles from 32 sequences
# (attention.DECODE_TILE_LARGE): the tests of the new paths compiled, the step without LoRA against
# the engine before (old: neither), with the fusion at every batch (ropeall) and without the
# 16-token tile (t32), five rounds in one process whose order rotates each round
# (gpu/bench_decode_variants.py --rotate); the engine's logits against transformers + peft with the
# new defaults (gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl); the engine's bench with them
# (gpu/bench_engine.py, with SGMV LoRA and prefill). Needs GIT_COMMIT. Results:
# $OUT/rope-tile-confirm.tar.gz. (Written for 4944a98, gpu/results/rope-tile-h200-4944a98/; since
# then the defaults are the fusion up to 16 rows and 32-token tiles at every batch, so `old` differs
# from the default from 17 rows on only by the rope kernel, and `t32` is the default.)
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=rope-tile-confirm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_fused_rope.py \
  gpu/tests/test_wide_rows.py gpu/tests/test_pdl.py
step variants timeout 200 python3 gpu/bench_decode_variants.py --out "$W/variants" --rounds 5 --rotate \
  --profile-batch 16 \
  --variant "old:model.DECODE_FUSED_ROPE_MAX_ROWS=0;attention.DECODE_TILE_LARGE=None" \
  --variant "ropeall:model.DECODE_FUSED_ROPE_MAX_ROWS=64" \
  --variant "t32:attention.DECODE_TILE_LARGE=None"
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl --out "$W/check"
step engine timeout 120 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
tail -n 1 "$W/tests.log"
grep -E "^fp16(_sgmv)?(_nopdl)?:" "$W/check.log" | cut -c1-60
[ -f "$W/engine/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| (none|sgmv)" "$W/engine/bench.md"
[ -f "$W/variants/variants.md" ] && sed -n 3,12p "$W/variants/variants.md"
echo "== done $(date -u +%T)"

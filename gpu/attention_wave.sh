#!/usr/bin/env bash
# On the GPU machine, one call (about 8 minutes): whether decode attention at 32 and 64 sequences is
# held back by how many of its programs fit the GPU at once. gpu/bench_decode_attention.py --family
# wave (the hand-pipelined loop at 1 and 2 splits, 8-32-token tiles, 1, 2 and 4 warps, every
# configuration float64-checked) at 32 and 64 x 129 and 2,048 tokens; then the decode step without
# LoRA (gpu/bench_decode_variants.py, rotating rounds, logits against the default's) with the rotary
# embedding inside attention from every batch (rope), 16-token tiles from 32 sequences (t16) and
# both (rope16), at 128 + 1 and at 2,048 + 1 tokens of context. Needs GIT_COMMIT. Results: $OUT/attention-wave.tar.gz. The run at
# a1b64b8 (gpu/results/attention-wave-h200-a1b64b8/) also had the tile's products on tensor cores
# (the kernel's MMA, in the sweep and as mma16), removed after it: `git checkout a1b64b8` runs it.
# The engine's defaults have changed since (one warp), so the variants now start from those.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=attention-wave.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
ROPE="model.DECODE_FUSED_ROPE_MAX_ROWS=64"
T16="attention.DECODE_TILE_LARGE=16"
step attention timeout 200 python3 gpu/bench_decode_attention.py --graph --family wave --batches 32,64 \
  --contexts 129,2048 --out "$W/attention"
for ctx in 128 2048; do
  step "variants-$ctx" timeout 130 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 16,32,64 --profile-batch 32 \
    --variant "rope:$ROPE" --variant "t16:$T16" --variant "rope16:$ROPE;$T16"
done
tail -n 6 "$W/attention.log"
for ctx in 128 2048; do [ -f "$W/variants-$ctx/variants.md" ] && sed -n 1,12p "$W/variants-$ctx/variants.md"; done
echo "== done $(date -u +%T)"

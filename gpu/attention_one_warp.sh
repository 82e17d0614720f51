#!/usr/bin/env bash
# On the GPU machine, one call (about 8 minutes), after gpu/attention_wave.sh found decode attention
# fastest at one warp a program at 32 and 64 sequences (gpu/results/attention-wave-h200-a1b64b8/):
# gpu/bench_decode_attention.py --family one-warp (1-16 splits, 8-32-token tiles, every
# configuration float64-checked) at 1, 8, 16, 32, 64 x 129, 1,024 and 4,096 tokens, beside the
# engine's default; then the decode step without LoRA (gpu/bench_decode_variants.py, three rotating
# rounds, logits against the default's) with one warp and 16- or 32-token tiles at every batch, with
# and without the rotary embedding inside attention from every batch, at 128 + 1 and 2,048 + 1
# tokens of context. Needs GIT_COMMIT. Results: $OUT/attention-one-warp.tar.gz. Written for 0e30e11
# (gpu/results/attention-one-warp-h200-0e30e11/); since 7018608 one warp, 32-token tiles and the
# rope at every batch are the defaults, so w1t32rope equals the default but for the split rule.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=attention-one-warp.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
W1="attention.DECODE_WARPS=1"
ROPE="model.DECODE_FUSED_ROPE_MAX_ROWS=64"
step attention timeout 240 python3 gpu/bench_decode_attention.py --graph --family one-warp --batches 1,8,16,32,64 \
  --contexts 129,1024,4096 --out "$W/attention"
for ctx in 128 2048; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 1,8,16,32,64 --profile-batch 32 \
    --variant "w1t16:$W1;attention.DECODE_TILE=16" --variant "w1t16rope:$W1;attention.DECODE_TILE=16;$ROPE" \
    --variant "w1t32:$W1" --variant "w1t32rope:$W1;$ROPE"
done
tail -n 17 "$W/attention.log"
for ctx in 128 2048; do [ -f "$W/variants-$ctx/variants.md" ] && sed -n 5,12p "$W/variants-$ctx/variants.md"; done
echo "== done $(date -u +%T)"

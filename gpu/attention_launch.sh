#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes): decode attention launched without PDL inside
# passes that keep it for every other kernel (gpu/engine/attention.py DECODE_PDL_LAUNCH False).
# PDL in the passes of 17-32 rows made the step 7-12 % slower from 1,024 + 1 tokens, and neither
# o_proj's early launch (DECODE_LATE_TRIGGER, gpu/results/late-trigger-h200-045628f/) nor the GEMMs
# explain it; attention's own early launch, behind the qkv GEMM, is what is left. If that is it,
# PDL can come back to those passes (2 % at 24 x 129 tokens) and 12-16 rows may lose less at long
# contexts. Each step packs what it wrote, the longest context first.
#   variants-*  the step without LoRA at 2,048 + 1, 128 + 1 and 1,024 + 1 tokens, three rotating rounds,
#               batch 8 / 12 / 16 / 24 / 32: plain (attention launched without PDL), plainwide (and PDL in
#               the passes of 17-32 rows, model.SKINNY_WIDE_PDL), plainqsk (and o_proj and down_proj on the
#               split-K skinny GEMM at 25-32 rows too: with PDL it was 2.9 % faster than cuBLASLt at
#               32 x 129, gpu/results/wide-route-h200-1386b0a/), batch 32's graph profiled
#   tests       the PDL tests compiled (TRITON_INTERPRET=0), attention's plain launch in a CUDA graph among them
#   engine-*    gpu/bench_engine.py --skip-transformers with plain's and plainwide's settings
# Needs GIT_COMMIT. Results: $OUT/attention-launch.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=attention-launch.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
PLAIN="attention.DECODE_PDL_LAUNCH=False"
WIDE="$PLAIN;model.SKINNY_WIDE_PDL=True"
for ctx in 2048 128 1024; do
  step "variants-$ctx" timeout 120 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 8,12,16,24,32 --profile-batch 32 \
    --variant "plain:$PLAIN" --variant "plainwide:$WIDE" --variant "plainqsk:$WIDE;model.SKINNY_WIDE_NARROW_MAX_M=None"
done
step tests env TRITON_INTERPRET=0 timeout 100 python3 -m pytest -q gpu/tests/test_pdl.py
step engine-plain timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-plain" --set "$PLAIN"
step engine-plainwide timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-plainwide" \
  --set "$WIDE"
tail -n 1 "$W/tests.log"
show_variants 2048 128 1024
show_engine plain plainwide
echo "== done $(date -u +%T)"

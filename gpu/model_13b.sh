#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes): the engine at the Llama-2-13B shape (hidden 5,120,
# intermediate 13,824, 40 layers; `--model llama-2-13b`, random fp16 weights), which had never been
# run. Its decode settings were all picked at the 7B shape.
#   variants-13b  gpu/bench_decode_variants.py: the decode step without LoRA at batch 1-64 x 129
#                 tokens as committed and with the norms and SiLU outside the GEMMs at 17-32 rows
#                 (model.WIDE_EPILOGUES False), three rotating rounds; each variant's logits against
#                 the default's, so the epilogue path is checked at this shape too
#   engine-13b    gpu/bench_engine.py --model llama-2-13b: the rooflines, with and without LoRA, prefill,
#                 adapter loads, merges and transformers' step on the same batches
# Needs GIT_COMMIT. Results: $OUT/model-13b.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${GIT_COMMIT:?GIT_COMMIT must name the commit this tree is}"
ARCHIVE=model-13b.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
step variants-13b timeout 240 python3 gpu/bench_decode_variants.py --model llama-2-13b --out "$W/variants-13b" \
  --rounds 3 --profile-batch 32 --variant "plain_norms:model.WIDE_EPILOGUES=False"
step engine-13b timeout 330 python3 gpu/bench_engine.py --model llama-2-13b --out "$W/engine-13b"
show_variants 13b
show_engine 13b
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one short call (about 2 minutes), after gpu/deterministic_ss.sh
# (gpu/results/deterministic-ss-h200-abf1045/): the epilogues' row sums of squares stored as parts
# (the same bits each run) against the fp32 atomics they replaced (model.EPILOGUE_SS_ATOMIC), side by
# side in one process (gpu/bench_decode_variants.py, three rotating rounds, no LoRA, 128 + 1 tokens):
# batch 16, 24 and 32 at the 7B shape, batch 32 at 13B. The other call's starts differ by 1-2 %, so
# only this comparison says what the parts cost. Needs GIT_COMMIT. Results: $OUT/ss-atomic-ab.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${GIT_COMMIT:?GIT_COMMIT must name the commit this tree is}"
ARCHIVE=ss-atomic-ab.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
step variants-7b timeout 90 python3 gpu/bench_decode_variants.py --out "$W/variants-7b" --rounds 3 \
  --batches 16,24,32 --variant "atomic:model.EPILOGUE_SS_ATOMIC=True"
step variants-13b timeout 70 python3 gpu/bench_decode_variants.py --model llama-2-13b --out "$W/variants-13b" \
  --rounds 3 --batches 32 --variant "atomic:model.EPILOGUE_SS_ATOMIC=True"
show_variants 7b 13b
echo "== done $(date -u +%T)"

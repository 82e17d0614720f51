#!/usr/bin/env bash
# On the GPU machine, one call (about 3 minutes): decode graphs chosen by context
# (model.DECODE_LONG_CONTEXT). Steps whose longest context reaches the threshold replay graphs
# captured with decode attention launched plainly, which was 2-7 % faster at 8-16 sequences and
# 2,048 + 1 tokens and 3-5 % slower at 128 + 1 (gpu/results/attention-launch-h200-3d399df/).
#   tests       the long graphs' tests (their bits against the usual graphs'), the PDL and argmax
#               tests, compiled (TRITON_INTERPRET=0)
#   variants-*  the step without LoRA at 128 + 1, 1,024 + 1 and 2,048 + 1 tokens, three rotating rounds,
#               batch 1 / 8 / 12 / 16 (the graph sizes under PDL): long (threshold 1,024) against the
#               default and against attention launched plainly in every graph (plain)
# Needs GIT_COMMIT. Results: $OUT/long-graphs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=long-graphs.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_long_graphs.py \
  gpu/tests/test_pdl.py gpu/tests/test_greedy.py
for ctx in 2048 128 1024; do
  step "variants-$ctx" timeout 120 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 1,8,12,16 \
    --variant "long:model.DECODE_LONG_CONTEXT=1024" --variant "plain:attention.DECODE_PDL_LAUNCH=False"
done
tail -n 1 "$W/tests.log"
show_variants 128 1024 2048
echo "== done $(date -u +%T)"

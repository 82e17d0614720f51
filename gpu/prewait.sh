#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes): two ways to keep PDL's overlap before decode
# attention without its cost at long contexts. gpu/results/attention-launch-h200-3d399df/ found that
# attention launched early behind the qkv GEMM is what made the wide passes' PDL 7-11 % slower from
# 1,024 + 1 tokens (1.6 % with attention launched plainly), and that launching it plainly costs 3-5 %
# at 8-16 sequences and 128 + 1 tokens. The likely reason: launched early, attention's programs (255
# registers a thread, 8 an SM) fit only 7 to an SM whose GEMM program still runs, so some start in a
# second wave, long at long contexts.
#   pre      attention.DECODE_PREWAIT_TILE: attention's first context tile loaded before its wait
#   late     model.SKINNY_LATE_TRIGGER_QKV: the qkv GEMM lets attention launch after its K loops
#   prelate  both; prelatewide: and PDL in the passes of 17-32 rows (model.SKINNY_WIDE_PDL)
#   tail     model.SKINNY_WIDE_LM_HEAD (lm_head on the transposed skinny GEMM at 17-32 rows) and
#            model.TRITON_ARGMAX (greedy sampling's argmax in one Triton program a row): about 10 us
#            a step together, less than the rounds' spread, so read batch 32's profile for them
# variants-*  the step without LoRA at 2,048 + 1, 128 + 1 and 1,024 + 1 tokens, three rotating rounds,
#             batch 8 / 12 / 16 / 24 / 32, batch 32's graph profiled
# tests       the PDL and argmax tests compiled (TRITON_INTERPRET=0): the chains with the fused rope,
#             prewait and late trigger in a CUDA graph among them
# engine-*    gpu/bench_engine.py --skip-transformers with prelate's and prelatewide's settings
# model.SKINNY_LATE_TRIGGER_QKV was removed after a0c6a84 (it lost): run this script on a checkout of 16aba57, where it
# ran (gpu/results/prewait-h200-16aba57/).
# Needs GIT_COMMIT. Results: $OUT/prewait.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=prewait.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
PRE="attention.DECODE_PREWAIT_TILE=True"
LATE="model.SKINNY_LATE_TRIGGER_QKV=True"
WIDE="model.SKINNY_WIDE_PDL=True"
TAIL="model.SKINNY_WIDE_LM_HEAD=True;model.TRITON_ARGMAX=True"
for ctx in 2048 128 1024; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 8,12,16,24,32 --profile-batch 32 \
    --variant "pre:$PRE" --variant "late:$LATE" --variant "prelate:$PRE;$LATE" \
    --variant "prelatewide:$PRE;$LATE;$WIDE" --variant "tail:$TAIL"
done
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_pdl.py gpu/tests/test_greedy.py
step engine-prelate timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-prelate" \
  --set "$PRE;$LATE"
step engine-prelatewide timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-prelatewide" \
  --set "$PRE;$LATE;$WIDE"
tail -n 1 "$W/tests.log"
show_variants 2048 128 1024
show_engine prelate prelatewide
echo "== done $(date -u +%T)"

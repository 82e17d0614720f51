#!/usr/bin/env bash
# On the GPU machine, one call (about 5 minutes): the skinny GEMMs under PDL with their first W
# tile loaded before their wait (model.SKINNY_PEEL), which may let PDL pay in the passes of 17-32
# rows, where it has not so far (gpu/results/prewait-h200-16aba57/); beside the small gains that
# were measured kernel by kernel there (the Triton argmax, lm_head on the skinny GEMM at 17-32 rows,
# attention's first tile before its wait).
#   peel       model.SKINNY_PEEL (the passes of 16 rows or fewer: the only ones under PDL by default)
#   peelpre    and attention.DECODE_PREWAIT_TILE
#   peelwide   peel and PDL in the passes of 17-32 rows (model.SKINNY_WIDE_PDL)
#   peelwide3  peelwide with the wide configs at 3 stages (the peeled tiles take a fourth's shared
#              memory: at 4 stages one program an SM fits, at 3 two)
#   tailpre    no peel: model.SKINNY_WIDE_LM_HEAD, model.TRITON_ARGMAX, attention.DECODE_PREWAIT_TILE
# variants-*  the step without LoRA at 2,048 + 1 and 128 + 1 tokens, three rotating rounds, batch 1 / 8
#             / 16 / 24 / 32, batch 32's graph profiled
# tests       the PDL tests compiled (TRITON_INTERPRET=0): the peeled GEMM's bits, the chains with it
# engine-*    gpu/bench_engine.py --skip-transformers with peelpre's and tailpre's settings
# model.SKINNY_PEEL was removed after a0c6a84 (it lost): run this script on a checkout of d5cf0fd, where it
# ran (gpu/results/peel-h200-d5cf0fd/).
# Needs GIT_COMMIT. Results: $OUT/peel.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=peel.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
PEEL="model.SKINNY_PEEL=True"
PRE="attention.DECODE_PREWAIT_TILE=True"
WIDE="model.SKINNY_WIDE_PDL=True"
S3="model.SKINNY_WIDE_CONFIG='tsk_n64_k128_w4_s3_sk1_ab';model.SKINNY_WIDE_NARROW_CONFIG='tsk_n64_k128_w4_s3_sk2_ab'"
TAIL="model.SKINNY_WIDE_LM_HEAD=True;model.TRITON_ARGMAX=True"
for ctx in 128 2048; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 1,8,16,24,32 --profile-batch 32 \
    --variant "peel:$PEEL" --variant "peelpre:$PEEL;$PRE" --variant "peelwide:$PEEL;$WIDE" \
    --variant "peelwide3:$PEEL;$WIDE;$S3" --variant "tailpre:$TAIL;$PRE"
done
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_pdl.py
step engine-peelpre timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-peelpre" \
  --set "$PEEL;$PRE"
step engine-tailpre timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-tailpre" \
  --set "$TAIL;$PRE"
tail -n 1 "$W/tests.log"
show_variants 128 2048
show_engine peelpre tailpre
echo "== done $(date -u +%T)"

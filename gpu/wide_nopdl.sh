#!/usr/bin/env bash
# On the GPU machine, one call (about 5 minutes), after gpu/wide_route.sh
# (gpu/results/wide-route-h200-1386b0a/): qkv through the skinny GEMM at 17-32 rows (gate_up,
# lm_head, o_proj and down_proj with cuBLAS) was faster than the engine at 128 + 1 and 1,024 + 1
# tokens only with PDL off, and that run turned PDL off at every batch. Here the wide passes alone
# go without PDL (gpu/engine/model.py SKINNY_WIDE_PDL), batches of 16 rows or fewer keep it.
#   tests       the PDL and wide rows' tests compiled (TRITON_INTERPRET=0)
#   variants-*  the step without LoRA at 128 + 1, 1,024 + 1 and 2,048 + 1 tokens, three rotating rounds
#               (the graph profiled at batch 24 at 128 + 1 tokens, where cuBLAS ran slower than at 32):
#               qonlynp (qkv alone through the skinny GEMM, no PDL in the wide passes), qsknp (o_proj and
#               down_proj on the split-K skinny config too), qonly (with PDL, as in wide_route.sh)
#   engine-*    gpu/bench_engine.py --skip-transformers as committed, and with qonlynp's settings
# Needs GIT_COMMIT. Results: $OUT/wide-nopdl.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=wide-nopdl.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
SK="tsk_n64_k128_w4_s4_sk1_ab"
QSK="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='$SK';model.SKINNY_WIDE_CUBLAS_N=16384"
QONLY="$QSK;model.SKINNY_WIDE_NARROW_CONFIG=None"
NP="model.SKINNY_WIDE_PDL=False"
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_wide_rows.py gpu/tests/test_pdl.py
for ctx in 128 1024 2048; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 16,24,32 --profile-batch "$([ "$ctx" = 128 ] && echo 24 || echo 32)" \
    --variant "qonlynp:$QONLY;$NP" --variant "qsknp:$QSK;$NP" --variant "qonly:$QONLY"
done
step engine-default timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-default"
step engine-qonlynp timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-qonlynp" \
  --set "$QONLY;$NP"
tail -n 1 "$W/tests.log"
show_variants 128 1024 2048
show_engine default qonlynp
echo "== done $(date -u +%T)"

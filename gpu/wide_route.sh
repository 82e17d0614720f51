#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes), after gpu/balanced_gemm.sh
# (gpu/results/balanced-gemm-h200-23ad912/): the balanced launch lost in the step, but at 32 rows the
# plain transposed skinny GEMM beat cuBLASLt on qkv (27.7 against 29.5 us) and lost on o_proj and
# down_proj, and decode attention at 12 and 24 sequences ran faster with one doubling of splits fewer.
#   tests       the wide rows', balanced kernel's, rope fusion's and PDL tests compiled (TRITON_INTERPRET=0)
#   check       gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl with the engine as committed
#               (DECODE_TARGET_PROGRAMS 768)
#   variants-*  the step without LoRA at 128 + 1 and 1,024 + 1 tokens, three rotating rounds
#               (gpu/bench_decode_variants.py): t1024 the split target before; for 17-32 rows qkv
#               through the skinny GEMM (tsk_n64_k128_w4_s4_sk1_ab), gate_up and lm_head with cuBLAS
#               and o_proj / down_proj on the split-K skinny config (qsk), with cuBLAS (qonly), on
#               the unsplit one (qsk1); balq (gpu/balanced_gemm.sh's best) again; qonly without PDL
#   engine-*    gpu/bench_engine.py --skip-transformers as committed, and with qsk's and qonly's settings
# Needs GIT_COMMIT. Results: $OUT/wide-route.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=wide-route.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
SK="tsk_n64_k128_w4_s4_sk1_ab"
QSK="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='$SK';model.SKINNY_WIDE_CUBLAS_N=16384"
QONLY="$QSK;model.SKINNY_WIDE_NARROW_CONFIG=None"
BALQ="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='${SK}_bal';model.SKINNY_WIDE_CUBLAS_N=16384"
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_wide_rows.py \
  gpu/tests/test_fused_rope.py gpu/tests/test_pdl.py gpu/tests/test_skinny_gemm.py -k "balanced or wide or rope or pdl"
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl --out "$W/check"
for ctx in 128 1024; do
  b=12,16,24,32; [ "$ctx" = 1024 ] && b=12,24,32
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches "$b" --profile-batch 32 \
    --variant "t1024:attention.DECODE_TARGET_PROGRAMS=1024" --variant "qsk:$QSK" --variant "qonly:$QONLY" \
    --variant "qsk1:$QSK;model.SKINNY_WIDE_NARROW_CONFIG='$SK'" --variant "balq:$BALQ" \
    --variant "qonlynopdl:$QONLY;model.DECODE_PDL=False"
done
step engine-default timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-default"
step engine-qonly timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-qonly" --set "$QONLY"
step engine-qsk timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-qsk" --set "$QSK"
tail -n 1 "$W/tests.log"
grep -E "^fp16(_sgmv)?(_nopdl)?:" "$W/check.log" | cut -c1-60
show_variants 128 1024
show_engine default qonly qsk
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 4 minutes): the row sums of squares of the GEMM epilogues
# stored as one part an N tile and summed in a fixed order by the GEMM that reads them, where fp32
# atomics used to add them in whatever order the tiles finished. With the atomics, batch 32's logits
# moved by about 1.3e-3 from one capture to the next (gpu/results/model-13b-h200-8c64e5e/).
#   tests         the epilogues' tests compiled (two runs of the same inputs give the same bits), the
#                 wide rows' and the skinny GEMM's
#   variants-7b   gpu/bench_decode_variants.py, three rotating rounds at the 7B shape, as committed and
#   variants-13b  with the norms and SiLU outside the GEMMs at 17-32 rows; each variant's logits
#                 against the first round's default (0 in every later round if the bits hold)
#   engine        gpu/bench_engine.py --skip-transformers as committed
# Needs GIT_COMMIT. Results: $OUT/deterministic-ss.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${GIT_COMMIT:?GIT_COMMIT must name the commit this tree is}"
ARCHIVE=deterministic-ss.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_fused_epilogues.py \
  gpu/tests/test_wide_rows.py gpu/tests/test_skinny_gemm.py
step variants-7b timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-7b" --rounds 3 \
  --profile-batch 32 --variant "plain_norms:model.WIDE_EPILOGUES=False"
step variants-13b timeout 150 python3 gpu/bench_decode_variants.py --model llama-2-13b --out "$W/variants-13b" \
  --rounds 3 --variant "plain_norms:model.WIDE_EPILOGUES=False"
step engine timeout 110 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
tail -n 1 "$W/tests.log"
grep -E "default b= (24|32)" "$W/variants-7b.log" "$W/variants-13b.log"
show_variants 7b 13b
[ -f "$W/engine/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| none" "$W/engine/bench.md"
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 5 minutes) in a machine start of its own, after lease cd9171f-1:
# does the engine as committed keep decode at batch 32 without LoRA above 70 % of the weight roofline
# in another start, and how does it compare with transformers today?
#   tests   the GPU tests of the paths the default takes at 17-32 rows (the skinny GEMM, its wide
#           rows and the norms and SiLU in its epilogues, float64 or unfused references)
#   engine  gpu/bench_engine.py as committed, with transformers' decode step on the same batches
#           (the table of docs/engine.md)
# Needs GIT_COMMIT. Results: $OUT/engine-confirm.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${GIT_COMMIT:?GIT_COMMIT must name the commit this tree is}"
ARCHIVE=engine-confirm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
. gpu/common/machine_start.sh  # start_id, how
echo "== machine start $start_id ($how)" | tee "$W/machine-start.txt"
step tests env TRITON_INTERPRET=0 timeout 200 python3 -m pytest -q gpu/tests/test_skinny_gemm.py \
  gpu/tests/test_wide_rows.py gpu/tests/test_fused_epilogues.py
step engine timeout 300 python3 gpu/bench_engine.py --out "$W/engine"
tail -n 1 "$W/tests.log"
[ -f "$W/engine/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| none" "$W/engine/bench.md"
echo "== done $(date -u +%T)"

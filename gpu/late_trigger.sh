#!/usr/bin/env bash
# On the GPU machine, one call (about 4 minutes): decode attention letting the next kernel launch
# after its loop rather than at its start (gpu/engine/attention.py DECODE_LATE_TRIGGER). Under PDL
# the GEMM after attention otherwise sits resident beside it, and at long contexts attention ran
# slower (gpu/results/wide-route-h200-1386b0a/, wide-nopdl-h200-da9b307/). Each step packs what it
# wrote, the longest context first, so a call stopped early still returns what finished.
#   tests       the PDL tests compiled (TRITON_INTERPRET=0), the late trigger's chain among them
#   variants-*  the step without LoRA at 128 + 1, 1,024 + 1 and 2,048 + 1 tokens, three rotating rounds,
#               batch 8 / 12 / 16 / 24 / 32: late (the late trigger), latewide (and PDL in the passes of
#               17-32 rows, model.SKINNY_WIDE_PDL), batch 12's graph profiled
#   engine-late gpu/bench_engine.py --skip-transformers with the late trigger
# Needs GIT_COMMIT. Results: $OUT/late-trigger.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=late-trigger.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
LATE="attention.DECODE_LATE_TRIGGER=True"
for ctx in 2048 128 1024; do  # the longest first: where the late trigger should show
  step "variants-$ctx" timeout 120 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 8,12,16,24,32 --profile-batch 12 \
    --variant "late:$LATE" --variant "latewide:$LATE;model.SKINNY_WIDE_PDL=True"
done
step tests env TRITON_INTERPRET=0 timeout 100 python3 -m pytest -q gpu/tests/test_pdl.py
step engine-late timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-late" --set "$LATE"
tail -n 1 "$W/tests.log"
show_variants 2048 128 1024
show_engine late
echo "== done $(date -u +%T)"

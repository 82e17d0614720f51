#!/usr/bin/env bash
# On the GPU machine, one call (about 2.5 minutes): the engine's logits against transformers + peft
# (gpu/check_engine.py, fp16 with and without SGMV LoRA) as committed, and again with the switches
# measured but not yet the default: the Triton argmax (model.TRITON_ARGMAX), lm_head on the skinny
# GEMM at 17-32 rows (model.SKINNY_WIDE_LM_HEAD), decode graphs chosen by context
# (model.DECODE_LONG_CONTEXT 55 with DECODE_LONG_MIN_ROWS 1, so that the check's decode steps of 4
# rows take both the usual and the long graph), attention's first tile before its wait
# (attention.DECODE_PREWAIT_TILE). Every run also checks that each sampled token is its logits row's
# argmax. Then the long graphs' and argmax tests, compiled.
# Needs GIT_COMMIT. Results: $OUT/check-switches.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=check-switches.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
SWITCHES="model.TRITON_ARGMAX=True;model.SKINNY_WIDE_LM_HEAD=True;model.DECODE_LONG_CONTEXT=55"
SWITCHES="$SWITCHES;model.DECODE_LONG_MIN_ROWS=1;attention.DECODE_PREWAIT_TILE=True"
step check-default timeout 150 python3 gpu/check_engine.py --runs fp16,fp16_sgmv --out "$W/check-default"
step check-switches timeout 150 python3 gpu/check_engine.py --runs fp16,fp16_sgmv --out "$W/check-switches" \
  --set "$SWITCHES"
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_long_graphs.py gpu/tests/test_greedy.py
for c in default switches; do
  echo "check-$c"; grep -E "pass=|^fp16" "$W/check-$c.log" | tail -n 12
done
tail -n 1 "$W/tests.log"
echo "== done $(date -u +%T)"

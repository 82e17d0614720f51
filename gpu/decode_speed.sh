#!/usr/bin/env bash
# On the GPU machine, one call (about 4 minutes; 249 s at 30a9ee2, with the 260-configuration
# sweep of then): where the decode step stands against the 70 % weight-roofline goal, and
# whether another decode-attention configuration moves it.
#   1. gpu/check_engine.py --runs fp16: the decode kernels (every split count, both launch orders)
#      and the engine against float64 references, before anything is timed;
#   2. gpu/bench_decode_attention.py --graph --quick --batches 1,8,16,32: 180 configurations of the
#      decode kernel at the batches of the goal, 128 tokens of context, replayed as a decode step's
#      32 layers;
#   3. gpu/bench_engine.py --skip-transformers: the decode step at batch 1-64 with the engine's
#      defaults, its kernels and the time between them (decode_graph_kernels);
#   4. the same with the configuration of step 2 that is fastest over its batches as the engine
#      (the loop Triton pipelines, --no-decode-attention-prefetch, since the engine took the hand-pipelined one)
#      would run it (gpu/decode_speed_pick.py: one configuration, the engine's split counts), when it
#      is at least 3 % faster than the default there (--decode-attention).
# Needs GIT_COMMIT in the environment (the tree on that machine has no .git). Everything goes to
# $OUT/speed.tar.gz, packed again after each step (a timeout still returns what finished).
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step check timeout 120 python3 gpu/check_engine.py --runs fp16 --out "$W/check"
step attention timeout 330 python3 gpu/bench_decode_attention.py --graph --quick --batches 1,8,16,32 \
  --out "$W/attention"
step engine timeout 180 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
best=$(python3 gpu/decode_speed_pick.py "$W/attention/decode_attention.csv" 2>"$W/pick.log")
if [ -n "$best" ]; then
  step engine-best timeout 180 python3 gpu/bench_engine.py --skip-transformers --decode-attention "$best" --no-decode-attention-prefetch \
    --out "$W/engine-best"
else
  echo "== no configuration 3 % faster than the default ($(cat "$W/pick.log"))"
fi
tail -n 30 "$W/attention.log"
grep -h -E "^\| (1|8|16|32|64) \| none" "$W/engine/bench.md" "$W/engine-best/bench.md" 2>/dev/null
echo "== done $(date -u +%T)"

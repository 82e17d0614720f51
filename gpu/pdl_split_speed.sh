#!/usr/bin/env bash
# On the GPU machine, one call: is PDL with decode attention split to 1,024 programs faster than the
# engine's default, within one machine start? (docs/engine.md, "Programmatic dependent launch": one
# run of each at 42d96f6 gave batch 16 4.582 against about 4.69 ms, differences of the size of the
# start-to-start spread.) gpu/bench_engine.py --skip-transformers, alternating ROUNDS times (default
# 3): the default (default-N/), then --pdl --pdl-prefetch-k 0 --decode-target-programs 1024
# (pdl-split-N/). About 75 s a round. Needs GIT_COMMIT in the environment. Results:
# $OUT/pdl-split-speed.tar.gz; the batch 1-32 rows of every run printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=pdl-split-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
B="timeout 120 python3 gpu/bench_engine.py --skip-transformers"
for i in $(seq 1 "${ROUNDS:-3}"); do
  step "default-$i" $B --out "$W/default-$i"
  step "pdl-split-$i" $B --pdl --pdl-prefetch-k 0 --decode-target-programs 1024 --out "$W/pdl-split-$i"
done
for d in "$W"/default-* "$W"/pdl-split-*; do
  [ -f "$d/bench.md" ] && { echo "$(basename "$d")"; grep -E "^\| (1|8|16|32) \| (none|sgmv)" "$d/bench.md"; }
done
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine: is it the replay loop that makes live decode steps dearer than the closed loop?
# (docs/validation.md, "Lease 61ed086-1", the rule set down before this ran.) In one call:
#   A  gpu/closed_loop.py, SGMV, concurrencies 12-32 (the graphs 12-32), the pool as profiled;
#   C  gpu/replay.py of gpu/calibration/closed-loop-like (the closed loop's workload as a Poisson
#      trace, the validation runs' engine: 4,096 KV blocks), 60 s;
#   B  A again with the scheduler's pool cut to 4,096 blocks (the one engine setting A and C differ in
#      that touches the decode kernels' inputs).
# Calibration data only. Needs GIT_COMMIT. Results: $OUT/results.tar.gz (loop-a/, loop-b/,
# replay/ with the calibration scenario's files, logs), packed again after each step. Then, here:
#   python3 scripts/step_errors.py WORK/loop-a WORK/loop-b --profile P --no-closed-loop
#   python3 scripts/step_errors.py WORK/replay --profile P --no-closed-loop
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
W=$OUT/work
mkdir -p "$W"
export PYTHONUNBUFFERED=1
conc=12,16,20,24,32
pack() { tar -C "$W" -czf "$OUT/results.tar.gz" .; }
echo "== A closed loop $(date -u +%T)"
timeout 90 python3 gpu/closed_loop.py --out "$W/loop-a" --lora sgmv --concurrency $conc --steps 200 --warmup 40 \
  > "$W/loop-a.log" 2>&1; echo "rc=$?"; pack
echo "== C replay $(date -u +%T)"
mkdir -p "$W/replay"
cp gpu/calibration/closed-loop-like/* "$W/replay/"
timeout 110 python3 gpu/replay.py gpu/calibration/closed-loop-like/scenario.yaml --out "$W/replay" --lora-kind sgmv \
  --max-seconds 60 > "$W/replay.log" 2>&1
echo "rc=$? $(grep -E '"finished"|"wall_s"' "$W/replay.log" | tr -d ' \n')"; pack
echo "== B closed loop, 4096 blocks $(date -u +%T)"
timeout 90 python3 gpu/closed_loop.py --out "$W/loop-b" --lora sgmv --concurrency $conc --steps 200 --warmup 40 \
  --num-blocks 4096 > "$W/loop-b.log" 2>&1; echo "rc=$?"; pack
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine: optionally profile the engine (calibration), then record live validation
# runs (each a real-time replay of traces/live/<run>/), and pack everything into $OUT.
# Usage: bash gpu/record_runs.sh [--profile] RUN...   (RUN: a folder name under traces/live/ whose
# scenario names this machine's GPU; checked before anything runs)
# The LoRA kernel is the scenario's cost_model.kernel; KERNEL=dop (or sgmv, torch) overrides it and
# the run is written to runs/<run>-<kernel>/ (so both kernels of one scenario can be recorded).
# --lora-kind dop reads gpu/dop/tuned_h200.json (DOP_TABLE overrides; the profile reads it too).
# PROFILE_ARGS and REPLAY_ARGS (environment) pass extra flags to gpu/profile_steps.py and every
# gpu/replay.py (say "--dense-lora-from 0" on both, to keep a lease's engine like an earlier one's);
# PROFILE_TIMEOUT (seconds, default 540) bounds the profile. CLOSED_LOOP=1 runs gpu/closed_loop.py
# (with SGMV and without LoRA; CLOSED_LOOP_VARIANTS="sgmv" for one, "sgmv dop" to correct dop runs too)
# after the profile and before the runs: calibration, like the profile. CLOSED_LOOP_ARGS passes flags to it (say "--seeds 0,1
# --concurrency 1,2,4,8,9,10,...") and CLOSED_LOOP_TIMEOUT (seconds, default 240) bounds each.
# CLOSED_LOOP_TAG (say "-end") is appended to the closed loop's folder and log: a second closed loop
# in the same lease (minutes after its runs), which scripts/install_lease.py keeps under gpu/results/
# rather than in the profile, and scripts/lease_report.py sets against the profile's own.
# CLOSED_LOOP=new-start runs the closed loop only if this call is the first of the machine's start (no
# $MACHINE_START_FILE yet, default /tmp/loratwin-machine-start): calls issued back to back may meet a
# fresh start, whose runs then get a closed loop of their own start. The start's id (its first call's
# UTC time) heads every run's replay.log and each closed loop's log, so a lease's runs can be grouped by start.
# RUNS_DEADLINE_S (seconds since this script began) skips, with a line, every run that could not
# finish by then (RUN_SECONDS a run, default 100): the next call records them, and the call returns in time.
# Needs GIT_COMMIT in the environment (the tree on that machine has no .git). Results go to
# $OUT/results.tar.gz (profile/ and runs/<run>/), packed again after every step.
set -uo pipefail
cd "$(dirname "$0")/.."
began=$SECONDS
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/work"
export PYTHONUNBUFFERED=1
profile=
if [ "${1:-}" = "--profile" ]; then profile=1; shift; fi
# Before any device time is spent: every RUN must exist and name this machine's GPU in its scenario
# (traces/live/v05-... is an H100 scenario, traces/live/h200-v05-... the H200 one); FORCE_GPU=1
# records a scenario on another GPU anyway.
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 | tr 'A-Z' 'a-z')
for run in "$@"; do
  [ -f "traces/live/$run/scenario.yaml" ] || { echo "traces/live/$run/scenario.yaml: no such run" >&2; exit 2; }
  want=$(sed -n 's/^gpu: *\([a-z0-9]*\).*/\1/p' "traces/live/$run/scenario.yaml" | cut -c1-4)
  if [ -n "$gpu" ] && [ -n "$want" ] && [ -z "${FORCE_GPU:-}" ] && [ "${gpu#*"$want"}" = "$gpu" ]; then
    echo "traces/live/$run/scenario.yaml: gpu $want, but this machine has '$gpu' (FORCE_GPU=1 to record it anyway)" >&2
    exit 2
  fi
done
. gpu/common/machine_start.sh  # start_id, how, new_start
echo "== machine start $start_id ($how)"
if [ -n "$profile" ]; then
  echo "== profile $(date -u +%T)"
  timeout "${PROFILE_TIMEOUT:-540}" python3 gpu/profile_steps.py --out "$OUT/work/profile" ${PROFILE_ARGS:-} 2>&1 | tee "$OUT/work/profile.log" | tail -12
  tar -C "$OUT/work" -czf "$OUT/results.tar.gz" .
fi
if [ "${CLOSED_LOOP:-}" = new-start ] && [ -z "$new_start" ]; then
  echo "== closed loop skipped: the machine's start $start_id had one (CLOSED_LOOP=new-start)"
elif [ -n "${CLOSED_LOOP:-}" ]; then  # live-like steps as calibration (gpu/closed_loop.py), with and without LoRA
  for lora in ${CLOSED_LOOP_VARIANTS:-sgmv none}; do
    echo "== closed loop ($lora) $(date -u +%T)"
    name=closed-loop-$lora${CLOSED_LOOP_TAG:-}
    echo "machine start: $start_id" > "$OUT/work/$name.log"
    timeout "${CLOSED_LOOP_TIMEOUT:-240}" python3 gpu/closed_loop.py --out "$OUT/work/$name" --lora "$lora" \
      ${CLOSED_LOOP_ARGS:-} >> "$OUT/work/$name.log" 2>&1
    echo "rc=$? $(grep -c 'concurrency [0-9]*:' "$OUT/work/$name.log") concurrencies"
    tar -C "$OUT/work" -czf "$OUT/results.tar.gz" .
  done
fi
for run in "$@"; do
  dir=traces/live/$run
  kernel=$(sed -n 's/.*kernel: \([a-z]*\)}.*/\1/p' "$dir/scenario.yaml")
  name=$run
  if [ -n "${KERNEL:-}" ]; then kernel=$KERNEL; name=$run-$KERNEL; fi
  if [ -n "${RUNS_DEADLINE_S:-}" ] && [ $((SECONDS - began + ${RUN_SECONDS:-100})) -gt "$RUNS_DEADLINE_S" ]; then
    echo "== skipped $run ($kernel): $((SECONDS - began)) s gone, RUNS_DEADLINE_S=$RUNS_DEADLINE_S"
    continue
  fi
  echo "== $run ($kernel) $(date -u +%T)"
  mkdir -p "$OUT/work/runs/$name"
  echo "machine start: $start_id" > "$OUT/work/runs/$name/replay.log"
  timeout 150 python3 gpu/replay.py "$dir/scenario.yaml" --out "$OUT/work/runs/$name" --lora-kind "$kernel" \
    --dop-table "${DOP_TABLE:-gpu/dop/tuned_h200.json}" \
    --max-seconds 110 ${REPLAY_ARGS:-} >> "$OUT/work/runs/$name/replay.log" 2>&1
  echo "rc=$? $(grep -E '"finished"|"wall_s"|"preemptions"' "$OUT/work/runs/$name/replay.log" | tr -d ' \n')"
  tar -C "$OUT/work" -czf "$OUT/results.tar.gz" .  # after each run: a timeout still returns what finished
done
echo "== done $(date -u +%T)"

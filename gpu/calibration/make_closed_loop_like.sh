#!/usr/bin/env bash
# Writes gpu/calibration/closed-loop-like/: a trace drawn like gpu/closed_loop.py's workload
# (log-normal prompts of median 450 and outputs of median 128, sigma 0.8, clipped as there; 8
# adapters of rank 16, uniform) with Poisson arrivals at 13 requests/s for 60 s, and the scenario
# that replays it with the validation runs' engine (4,096 KV blocks, max_model_len 4096, 8 GPU
# slots). Calibration data, not a validation run: gpu/diag_replay_vs_loop.sh replays it to see
# whether the replay loop itself makes decode steps dearer than the closed loop does
# (docs/validation.md, "Lease 61ed086-1"). The rate puts most decode steps at graphs 12-24 in the
# twin. Re-running it rewrites identical files.
set -euo pipefail
cd "$(dirname "$0")/../.."
LT=${LORATWIN:-.build/release/loratwin}
[ -x "$LT" ] || swift build -c release --product loratwin >&2
dir=gpu/calibration/closed-loop-like
mkdir -p "$dir"
"$LT" trace generate --requests 780 --arrival poisson --rate 13 --adapters 8 --popularity uniform --ranks 16 \
  --prompt-tokens lognormal:450:0.8:16:2048 --output-tokens lognormal:128:0.8:8:512 --seed 901 "$dir/trace.csv" >/dev/null
cat > "$dir/scenario.yaml" <<YAML
# Calibration replay (gpu/calibration/make_closed_loop_like.sh): the closed loop's workload as a
# trace, replayed in real time by gpu/diag_replay_vs_loop.sh. Not a validation run.
name: closed-loop-like
seed: 0
model: llama-2-7b
gpu: h200
cost_model: {kind: measured, profile: ../../../profiles/h200-llama2-7b, kernel: sgmv}
engine:
  max_num_seqs: 128
  max_num_batched_tokens: 4096
  chunked_prefill: true
  block_size: 16
  num_gpu_blocks: 4096
  max_model_len: 4096
  max_loras: 8
  max_lora_rank: 64
  max_cpu_loras: 32
workload:
  trace: trace.csv
  catalogue: trace.catalogue.csv
YAML
echo "wrote $dir"

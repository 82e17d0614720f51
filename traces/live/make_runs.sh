#!/usr/bin/env bash
# Writes the validation scenarios under traces/live/<run>/: scenario.yaml, trace.csv and its
# catalogue, every trace from a fixed seed (re-running this script rewrites identical files).
# Record a run on the GPU machine with:
#   python3 gpu/replay.py traces/live/<run>/scenario.yaml --out traces/live/<run> --lora-kind <kernel>
# (the kernel is the scenario's cost_model.kernel; gpu/record_runs.sh records them all).
#
#   bash traces/live/make_runs.sh              # the H100 set (v01..v12), recorded on an H100
#   bash traces/live/make_runs.sh --gpu h200   # the H200 set (h200-v..), for profiles/h200-llama2-7b
#   bash traces/live/make_runs.sh --gpu h200 h200-v01-low-uniform-mixed ...   # only the named runs
# A recorded run's scenario.yaml names the profile of its lease (gpu/record_runs.sh); rewriting a
# recorded run's folder points it back at the generic profile, so name only the runs to record.
# The H200 set has its own arrival rates: its load levels (below, near, above saturation) were
# set with the twin on the H200 *profile* (calibration data), before any H200 run was recorded.
set -euo pipefail
cd "$(dirname "$0")/../.."
LT=${LORATWIN:-.build/release/loratwin}
[ -x "$LT" ] || swift build -c release --product loratwin >&2
GPU=h100
if [ "${1:-}" = "--gpu" ]; then GPU=$2; shift 2; fi
ONLY=("$@")  # run names to write (none: all of the set)
wanted() {  # true when run $1 is to be written
  [ ${#ONLY[@]} -eq 0 ] && return 0
  local n
  for n in "${ONLY[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}
case "$GPU" in h100|h200) ;; *) echo "make_runs.sh: --gpu must be h100 or h200, not '$GPU'" >&2; exit 2;; esac

# run name | kernel | num_gpu_blocks | max_loras | chunked | generator options...
runs=(
  "v01-low-uniform-mixed|sgmv|4096|8|true|--requests 160 --arrival poisson --rate 4 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 101"
  "v02-near-zipf-mixed|sgmv|4096|8|true|--requests 560 --arrival poisson --rate 14 --adapters 32 --popularity zipf:1.2 --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 102"
  "v03-over-distinct-loading|sgmv|4096|8|true|--requests 840 --arrival poisson --rate 28 --adapters 64 --popularity distinct --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 103"
  "v04-near-identical-rank16|sgmv|4096|8|true|--requests 640 --arrival poisson --rate 16 --adapters 8 --popularity identical --ranks 16 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 104"
  "v05-bursty-uniform-rank32|sgmv|4096|8|true|--requests 400 --arrival gamma --rate 10 --cv 3 --adapters 16 --popularity uniform --ranks 32 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 105"
  "v07-long-prompts-torch|torch|4096|8|true|--requests 160 --arrival poisson --rate 4 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:2000:0.5:256:3500 --output-tokens lognormal:64:0.6:4:256 --seed 107"
  "v08-near-zipf-torch|torch|4096|8|true|--requests 560 --arrival poisson --rate 14 --adapters 32 --popularity zipf:1.2 --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 102"
  "v09-small-kv-preempt|sgmv|600|8|true|--requests 400 --arrival poisson --rate 10 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:256:0.6:16:1024 --seed 109"
  "v10-over-skewed-top2|sgmv|4096|4|true|--requests 720 --arrival poisson --rate 24 --adapters 32 --popularity top:2:0.8 --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 110"
  "v11-low-distinct-rank8|sgmv|4096|8|true|--requests 240 --arrival poisson --rate 6 --adapters 32 --popularity distinct --ranks 8 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 111"
  "v12-near-uniform-nochunk|sgmv|4096|8|false|--requests 480 --arrival poisson --rate 12 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 112"
)

# The H200 set: the same make-up, rates for the H200 (see above). v01, v02, v03 and v07 were
# recorded at 2039ec5; the others were added after, their load set on the same profile.
runs_h200=(
  "h200-v01-low-uniform-mixed|sgmv|4096|8|true|--requests 264 --arrival poisson --rate 4 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 201"
  "h200-v02-near-zipf-mixed|sgmv|4096|8|true|--requests 840 --arrival poisson --rate 14 --adapters 32 --popularity zipf:1.2 --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 202"
  "h200-v03-over-distinct-loading|sgmv|4096|8|true|--requests 900 --arrival poisson --rate 22 --adapters 64 --popularity distinct --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 203"
  "h200-v04-near-identical-rank16|sgmv|4096|8|true|--requests 1584 --arrival poisson --rate 24 --adapters 8 --popularity identical --ranks 16 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 204"
  "h200-v05-bursty-uniform-rank32|sgmv|4096|8|true|--requests 792 --arrival gamma --rate 12 --cv 3 --adapters 16 --popularity uniform --ranks 32 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 205"
  "h200-v07-long-prompts-torch|torch|4096|8|true|--requests 396 --arrival poisson --rate 6 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:2000:0.5:256:3500 --output-tokens lognormal:64:0.6:4:256 --seed 207"
  "h200-v09-small-kv-preempt|sgmv|600|8|true|--requests 280 --arrival poisson --rate 7 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:256:0.6:16:1024 --seed 209"
  "h200-v12-near-uniform-nochunk|sgmv|4096|8|false|--requests 1056 --arrival poisson --rate 16 --adapters 16 --popularity uniform --ranks 8,16,32,64 --prompt-tokens lognormal:512:0.8:16:2048 --output-tokens lognormal:128:0.7:4:512 --seed 212"
)

write_scenario() {  # dir name kernel blocks loras chunked
  cat > "$1/scenario.yaml" <<YAML
# Validation run $2 (made by traces/live/make_runs.sh; record with gpu/record_runs.sh).
name: $2
seed: 0
model: llama-2-7b
gpu: $GPU
cost_model: {kind: measured, profile: ../../../profiles/$GPU-llama2-7b, kernel: $3}
engine:
  max_num_seqs: 128
  max_num_batched_tokens: 4096
  chunked_prefill: $6
  block_size: 16
  num_gpu_blocks: $4
  max_model_len: 4096
  max_loras: $5
  max_lora_rank: 64
  max_cpu_loras: 32
workload:
  trace: trace.csv
  catalogue: trace.catalogue.csv
YAML
}

make_generated() {  # one "name|kernel|blocks|loras|chunked|generator options" spec
  local name kernel blocks loras chunked opts dir
  IFS='|' read -r name kernel blocks loras chunked opts <<<"$1"
  wanted "$name" || return 0
  dir=traces/live/$name
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$LT" trace generate $opts "$dir/trace.csv" >/dev/null
  write_scenario "$dir" "$name" "$kernel" "$blocks" "$loras" "$chunked"
}

make_azure() {  # name window_end rate_scale seed: a slice of the Azure conversation trace, 16 adapters, Zipf
  wanted "$1" || return 0
  local dir=traces/live/$1
  mkdir -p "$dir"
  "$LT" trace convert --from azure traces/azure-llm-2023/AzureLLMInferenceTrace_conv.csv "$dir/trace.csv" \
    --window-end "$2" --rate-scale "$3" --adapters 16 --popularity zipf:1.0 --ranks 8,16,32,64 --seed "$4" >/dev/null
  write_scenario "$dir" "$1" sgmv 4096 8 true
}

check_names() {  # every name asked for is in the set ("$@": the set's names)
  local n k found
  for n in "${ONLY[@]}"; do
    found=0
    for k in "$@"; do [ "$k" = "$n" ] && found=1; done
    [ $found = 1 ] || { echo "make_runs.sh: no run '$n' in the $GPU set" >&2; exit 2; }
  done
}

if [ "$GPU" = h200 ]; then
  check_names "${runs_h200[@]%%|*}" h200-v06-azure-conv-zipf
  for spec in "${runs_h200[@]}"; do make_generated "$spec"; done
  make_azure h200-v06-azure-conv-zipf 120 2.0 206  # the first 120 s at 2x the rate
  echo "wrote $([ ${#ONLY[@]} -gt 0 ] && echo ${#ONLY[@]} || echo $((${#runs_h200[@]} + 1))) H200 validation scenarios"
  exit 0
fi

check_names "${runs[@]%%|*}" v06-azure-conv-zipf
for spec in "${runs[@]}"; do make_generated "$spec"; done
make_azure v06-azure-conv-zipf 60 1.5 106  # the first 60 s at 1.5x the rate
echo "wrote $([ ${#ONLY[@]} -gt 0 ] && echo ${#ONLY[@]} || ls -d traces/live/v* | wc -l) validation scenarios"

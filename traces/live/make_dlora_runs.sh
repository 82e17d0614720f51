#!/usr/bin/env bash
# Writes the dLoRA live scenarios (issue 8) under traces/live/<run>/: scenario.yaml, the generator
# section that made the trace (trace.generator.yaml), trace.csv and its catalogue, every trace from
# a fixed seed (re-running this script rewrites identical files). Each workload is recorded under
# `scheduler: {kind: dlora, drain_credit: false}` (draft 2, the default until lease 67078bf-1) and, as
# separate folders with the same trace, under baselines (each pinned to draft 2 but -draincredit):
#   -fcfs      always unmerged (SGMV)
#   -merged    always merged: {kind: dlora, merge_ratio: 0, stay_ratio: 0, credits: false, adaptive: false}
#   -nocredit  dLoRA without credits: {kind: dlora, credits: false}
#   -draincredit  dLoRA whose drains pay the candidates they displace: {kind: dlora, drain_credit: true}
#                 (the default since lease 67078bf-1)
#   -maxwait5  dLoRA with the aging guard: {kind: dlora, max_wait_s: 5}
# (the first three for d01 and d04, -fcfs for d02 and d03, -draincredit and -maxwait5 for d04).
#
# Made for one H200 and Llama-2-7B (cost model: the H200 profile, measured separately), with
# max_num_seqs 32 so that a merge (the hot adapter's queue at least merge_ratio 1.5 x 32 = 48
# waiting requests) happens under bursts of overload: the loads are set from the twin on the H100
# profile with arrivals stretched 1.24x (the analytic model's H200/H100 ratio at saturation), and
# checked at 1.1x and 1.4x. Each replay takes 60-100 s (gpu/record_runs.sh caps it at 110 s).
#
#   bash traces/live/make_dlora_runs.sh            # write the folders
#   bash traces/live/make_dlora_runs.sh --preview  # and print the twin's preview of each (H100 profile)
# Record on the GPU machine with: bash gpu/record_runs.sh d01-skewed-zipf2 d01-skewed-zipf2-fcfs ...
set -euo pipefail
cd "$(dirname "$0")/../.."
LT=${LORATWIN:-.build/release/loratwin}
[ -x "$LT" ] || swift build -c release --product loratwin >&2
preview=false
[ "${1:-}" = "--preview" ] && preview=true

lengths='prompt_tokens: {kind: lognormal, mean: 512, sigma: 0.8, min: 16, max: 2048}
output_tokens: {kind: lognormal, mean: 128, sigma: 0.7, min: 4, max: 512}'
adapters() { echo "adapters: {count: $1, ranks: {8: 1, 16: 1, 32: 1, 64: 1}, alpha: 16, target_modules: [q_proj, k_proj, v_proj, o_proj]}"; }

# d01: skewed (Zipf 2.0 over 8 adapters: a0 about 2/3), three 12 s bursts of overload (28/s)
# with calm (5/s) between: the hot queue passes 48 in each burst and drains after it.
d01="requests: 836
arrival:
  kind: piecewise
  phases:
    - {duration_s: 12, kind: poisson, rate: 28}
    - {duration_s: 12, kind: poisson, rate: 5}
    - {duration_s: 12, kind: poisson, rate: 28}
    - {kind: poisson, rate: 4}
popularity: {kind: zipf, exponent: 2.0}
$lengths
$(adapters 8)"

# d02: identical-heavy (95 % on one adapter of 8), 36 s of steady overload (19/s), then 6/s.
d02="requests: 846
arrival:
  kind: piecewise
  phases:
    - {duration_s: 36, kind: poisson, rate: 19}
    - {kind: poisson, rate: 6}
popularity: {kind: skewed, top: 1, share: 0.95}
$lengths
$(adapters 8)"

# d03: popularity shift half-way: 80 % on a0 for 30 s, then 80 % on a3 (ranking rotated by 3);
# two 22 s bursts (20/s) around an 8 s lull (5/s).
d03="requests: 968
arrival:
  kind: piecewise
  phases:
    - {duration_s: 22, kind: poisson, rate: 20}
    - {duration_s: 8, kind: poisson, rate: 5}
    - {duration_s: 22, kind: poisson, rate: 20}
    - {kind: poisson, rate: 4}
popularity: {kind: skewed, top: 1, share: 0.8}
popularity_shifts: [{start_s: 30, kind: skewed, top: 1, share: 0.8, rotation: 3}]
$lengths
$(adapters 8)"

# d04: a cold adapter: 90 % on a0, about 3 % on each of three others; 30 s of overload (22/s),
# then 5/s. Merged onto a0, dLoRA without credits serves no other adapter while a0 has 16 or
# more waiting: the cold adapters' requests wait for the overload to end.
d04="requests: 825
arrival:
  kind: piecewise
  phases:
    - {duration_s: 30, kind: poisson, rate: 22}
    - {kind: poisson, rate: 5}
popularity: {kind: skewed, top: 1, share: 0.9}
$lengths
$(adapters 4)"

# run name | generator (a variable above) | seed | baselines
runs=(
  "d01-skewed-zipf2|d01|301|fcfs merged nocredit"
  "d02-identical-heavy-share95|d02|302|fcfs"
  "d03-popularity-shift-rot3|d03|303|fcfs"
  "d04-cold-adapter-share90|d04|304|fcfs merged nocredit draincredit maxwait5"
)

scheduler_of() {
  case $1 in
    dlora) echo "{kind: dlora, drain_credit: false}" ;;
    fcfs) echo "fcfs" ;;
    merged) echo "{kind: dlora, merge_ratio: 0, stay_ratio: 0, credits: false, adaptive: false, drain_credit: false}" ;;
    nocredit) echo "{kind: dlora, credits: false, drain_credit: false}" ;;
    draincredit) echo "{kind: dlora, drain_credit: true}" ;;
    maxwait5) echo "{kind: dlora, max_wait_s: 5, drain_credit: false}" ;;
  esac
}

write_scenario() {  # dir name scheduler what
  cat > "$1/scenario.yaml" <<YAML
# dLoRA live run $2: $4 (made by traces/live/make_dlora_runs.sh; record with gpu/record_runs.sh).
name: $2
seed: 0
model: llama-2-7b
gpu: h200
cost_model: {kind: measured, profile: ../../../profiles/h200-llama2-7b, kernel: sgmv}
scheduler: $3
engine:
  max_num_seqs: 32
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
}

preview_run() {  # dir: the twin on the H100 profile, arrivals as recorded (no stretch)
  local dir=$1
  sed 's|profiles/h200-llama2-7b|profiles/h100-llama2-7b|; s|^gpu: h200|gpu: h100|' "$dir/scenario.yaml" > "$dir/.preview.yaml"
  "$LT" simulate "$dir/.preview.yaml" --json > "$dir/.preview.json"
  python3 - "$dir" <<'PY'
import json, sys
d = json.load(open(sys.argv[1] + "/.preview.json"))
f = lambda x: "-" if x is None else f"{x:.2f}"
print(f"  {sys.argv[1].split('/')[-1]:38s} req/s {f(d['requests_per_s'])}  TTFT p50 {f(d['ttft']['p50_s'])} s  "
      f"E2E p99 {f(d['e2e']['p99_s'])} s  longest wait {f(d['longest_wait_s'])} s  mode changes {d['mode_changes']}")
PY
  rm -f "$dir/.preview.yaml" "$dir/.preview.json"
}

for spec in "${runs[@]}"; do
  IFS='|' read -r name var seed baselines <<<"$spec"
  gen=${!var}
  dir=traces/live/$name
  mkdir -p "$dir"
  printf '# The generator section that made trace.csv (seed %s):\n#   loratwin trace generate --spec trace.generator.yaml --seed %s trace.csv\n%s\n' \
    "$seed" "$seed" "$gen" > "$dir/trace.generator.yaml"
  "$LT" trace generate --spec "$dir/trace.generator.yaml" --seed "$seed" "$dir/trace.csv" >/dev/null
  write_scenario "$dir" "$name" "$(scheduler_of dlora)" "dLoRA"
  $preview && preview_run "$dir"
  for b in $baselines; do
    bdir=$dir-$b
    mkdir -p "$bdir"
    cp "$dir/trace.generator.yaml" "$dir/trace.csv" "$dir/trace.catalogue.csv" "$dir/trace.meta.json" "$bdir/"
    write_scenario "$bdir" "$name-$b" "$(scheduler_of "$b")" "baseline $b on the trace of $name"
    $preview && preview_run "$bdir"
  done
done
echo "wrote $(ls -d traces/live/d0* | wc -l) dLoRA scenarios"

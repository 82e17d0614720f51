#!/usr/bin/env bash
# Twin-only what-if: the same skewed workload under FCFS (always unmerged), dLoRA, dLoRA without
# credits, and "always merged", on the measured H100 profile. Prints a markdown table of the
# twin's predictions (docs/schedulers.md quotes it). Not a validation: no live run is involved.
set -euo pipefail
cd "$(dirname "$0")/.."
LT=${LORATWIN:-.build/release/loratwin}
[ -x "$LT" ] || swift build -c release --product loratwin >&2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
workload='workload:
  requests: 4000
  arrival: {kind: poisson, rate: 16}
  popularity: {kind: zipf, exponent: 2.0}
  prompt_tokens: {kind: lognormal, mean: 512, sigma: 0.8, min: 16, max: 2048}
  output_tokens: {kind: lognormal, mean: 128, sigma: 0.7, min: 4, max: 512}
  adapters: {count: 16, ranks: {8: 1, 16: 1, 32: 1, 64: 1}}'
echo "| scheduler | requests/s | output tok/s | TTFT p50 (s) | E2E p99 (s) | longest wait (s) | merges |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for spec in "fcfs|fcfs" "dlora|{kind: dlora, drain_credit: false}" "dlora, speed: decode|{kind: dlora, speed: decode, drain_credit: false}" "dlora, drain_credit|{kind: dlora, drain_credit: true}" "dlora, no credits|{kind: dlora, credits: false, drain_credit: false}" \
            "always merged|{kind: dlora, merge_ratio: 0, stay_ratio: 0, credits: false, adaptive: false}"; do
  name=${spec%%|*}
  sched=${spec#*|}
  printf 'name: whatif\nseed: 5\nscheduler: %s\nengine: {max_num_seqs: 32, max_loras: 8, max_cpu_loras: 16}\n%s\n' \
    "$sched" "$workload" > "$dir/s.yaml"
  "$LT" simulate "$dir/s.yaml" --json --batch-log "$dir/b.jsonl" > "$dir/out.json"
  merges=$(grep -c '"switch": "merge' "$dir/b.jsonl" || true)
  python3 - "$dir/out.json" "$name" "$merges" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = lambda x: "-" if x is None else f"{x:.2f}"
print(f"| {sys.argv[2]} | {f(d['requests_per_s'])} | {d['output_tokens_per_s']:.0f} | {f(d['ttft']['p50_s'])} | "
      f"{f(d['e2e']['p99_s'])} | {f(d['longest_wait_s'])} | {sys.argv[3]} |")
PY
done

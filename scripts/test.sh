#!/usr/bin/env bash
# Runs every check that needs no GPU: swift format's lint, the Swift tests, the Python tests of gpu/ (scheduler,
# record writers, segment metadata, and the scheduler conformance test against the twin's
# binary), ruff, and the twin's validation guard where recorded runs exist.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --python
swift format lint --strict -r Sources Tests Benchmarks   # config: .swift-format
swift build -c release --product loratwin
swift test
python3 -m ruff check gpu
LORATWIN_BIN="$PWD/.build/release/loratwin" python3 -m pytest gpu/tests -q
# The twin against the committed live runs: a regression guard on its predictions.
.build/release/loratwin validate traces/live --check traces/live/thresholds.yaml
.build/release/loratwin validate traces/live --gpu h200 --check traces/live/thresholds-h200.yaml
repeats_csv=$(mktemp)
trap 'rm -f "$repeats_csv"' EXIT
.build/release/loratwin validate traces/repeats --check traces/repeats/thresholds.yaml --output "$repeats_csv"
# The validation issue's goals on the runs of the engine as it runs today (its leases by commit).
python3 scripts/validation_groups.py "$repeats_csv" --runs traces/repeats --merge today=e82f051,d6fff0f,3a804f7,5ba5c79,67078bf,94f6de6,9da212b,236c9ed,84cab04,95210c1,ac9e12d,1386b0a,045628f,c60468c,cd9171f \
  --check today=traces/repeats/goals-today.yaml | tail -n 1
# dLoRA's issue: the summed mode changes of every d-run recording within 10 % (docs/schedulers.md).
python3 scripts/schedulers_live.py --check-mode-changes 10 | tail -n 1
echo "all checks passed"

#!/usr/bin/env bash
# Builds LoRA Twin (release) and runs the built-in default scenario. Extra arguments go to
# `loratwin simulate` (e.g. a scenario file, --output DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
swift build -c release --product loratwin >&2
exec .build/release/loratwin simulate "$@"

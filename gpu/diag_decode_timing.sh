#!/usr/bin/env bash
# On the GPU machine, one call (up to about 9 minutes): what timing the decode tables need.
#   1. gpu/diag_loop.py with LoRA (sgmv) and without: the same decode batches back to back, at
#      rest 1, with a host gap and inside the replay loop, interleaved;
#   2. gpu/profile_steps.py --tables step_decode at --decode-rest 0 and 1, one after the other;
#   3. gpu/bench_decode_attention.py --graph --quick: the decode attention kernel's launch orders.
# Needs GIT_COMMIT in the environment (the tree on that machine has no .git). Everything goes to
# $OUT/diag.tar.gz, packed again after each step (a timeout still returns what finished).
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=diag.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step loop-sgmv python3 gpu/diag_loop.py --out "$W/loop-sgmv" --lora sgmv
step loop-none python3 gpu/diag_loop.py --out "$W/loop-none" --lora none
step decode-rest0 python3 gpu/profile_steps.py --tables step_decode --decode-rest 0 --out "$W/rest0"
step decode-rest1 python3 gpu/profile_steps.py --tables step_decode --decode-rest 1 --out "$W/rest1"
step attention timeout 180 python3 gpu/bench_decode_attention.py --graph --quick --out "$W/attention"
cat "$W/loop-sgmv/loop.md" "$W/loop-none/loop.md" 2>/dev/null
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call after a change of the engine's decode defaults (here: decode
# attention's loop pipelined by hand with 32-token tiles and 2 warps, and programmatic dependent
# launch, on): the engine's logits against transformers + peft with the defaults, with SGMV and
# without PDL (gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl; its decode-kernel check covers
# both loops), the decode step with the defaults (gpu/bench_engine.py, engine/), and the kernel's
# configurations at 4,096 tokens of context (gpu/bench_decode_attention.py --family prefetch,
# attention-4096/). About 4 minutes. Needs GIT_COMMIT. Results: $OUT/engine-default-check.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=engine-default-check.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_sgmv,fp16_nopdl --out "$W/check"
step engine timeout 110 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
step attention-4096 timeout 120 python3 gpu/bench_decode_attention.py --graph --family prefetch --batches 64 \
  --contexts 4096 --out "$W/attention-4096"
grep -E "^fp16(_sgmv)?(_nopdl)?:|decode_kernel|pass" "$W/check.log" | tail -n 5
tail -n 3 "$W/attention-4096.log"
[ -f "$W/engine/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| (none|sgmv)" "$W/engine/bench.md"
echo "== done $(date -u +%T)"

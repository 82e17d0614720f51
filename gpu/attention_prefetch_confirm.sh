#!/usr/bin/env bash
# On the GPU machine, one call after gpu/attention_prefetch_speed.sh: the decode step with decode
# attention's hand-pipelined loop in the configurations gpu/bench_decode_attention.py --family prefetch
# found best at the step's context (32-token tiles, 2 warps: engine-pf32/; with PDL: engine-pdl-pf32/;
# 16-token tiles: engine-pf16/), alternating with the default (engine-a/, engine-b/), then the decode
# kernel's tests in Triton's interpreter (CPU tensors). About 4 minutes. Needs GIT_COMMIT.
# Results: $OUT/attention-prefetch-confirm.tar.gz; the batch 1-32 rows printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=attention-prefetch-confirm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
B="timeout 110 python3 gpu/bench_engine.py --skip-transformers"
step engine-a $B --out "$W/engine-a"
step engine-pf32 $B --decode-attention 32,2,1 --decode-attention-prefetch --out "$W/engine-pf32"
step engine-pdl-pf32 $B --pdl --pdl-prefetch-k 0 --decode-attention 32,2,1 --decode-attention-prefetch \
  --out "$W/engine-pdl-pf32"
step engine-b $B --out "$W/engine-b"
step engine-pf16 $B --decode-attention 16,2,1 --decode-attention-prefetch --out "$W/engine-pf16"
step tests env TRITON_INTERPRET=1 timeout 150 python3 -m pytest -q gpu/tests/test_decode_kernel.py
tail -n 2 "$W/tests.log"
for d in engine-a engine-pf32 engine-pdl-pf32 engine-b engine-pf16; do
  [ -f "$W/$d/bench.md" ] && { echo "$d"; grep -E "^\| (1|8|16|32|64) \| (none|sgmv)" "$W/$d/bench.md"; }
done
echo "== done $(date -u +%T)"

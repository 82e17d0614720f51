#!/usr/bin/env bash
# On the GPU machine, one call: decode attention's loop pipelined by hand (gpu/engine/attention.py
# _paged_decode_kernel PREFETCH, DECODE_PREFETCH) checked and timed. Its tests on the GPU (against
# float64; the PDL chain in a CUDA graph, same bits with PDL as without), then the decode step
# (gpu/bench_engine.py, no transformers) as the engine runs it by default (engine/), with the loop
# pipelined by hand (engine-pf/), with that, PDL and the attention split to 1,024 programs
# (engine-pdl-split-pf/), the kernel's configurations at the step's context (129 tokens: 128 of
# prompt and the new one) and at 1,024 (gpu/bench_decode_attention.py --family prefetch, attention/),
# and PDL with the split alone (engine-pdl-split/). About 9 minutes. Needs GIT_COMMIT in the
# environment. Results: $OUT/attention-prefetch-speed.tar.gz; the batch 1-32 rows printed last.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=attention-prefetch-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q \
  gpu/tests/test_pdl.py::test_decode_chain_in_a_graph_same_bits
B="timeout 110 python3 gpu/bench_engine.py --skip-transformers"
step engine $B --out "$W/engine"
step engine-pf $B --decode-attention-prefetch --out "$W/engine-pf"
step engine-pdl-split-pf $B --pdl --pdl-prefetch-k 0 --decode-target-programs 1024 --decode-attention-prefetch \
  --out "$W/engine-pdl-split-pf"
step attention timeout 170 python3 gpu/bench_decode_attention.py --graph --family prefetch --batches 1,16,32 \
  --contexts 129,1024 --out "$W/attention"
step engine-pdl-split $B --pdl --pdl-prefetch-k 0 --decode-target-programs 1024 --out "$W/engine-pdl-split"
tail -n 3 "$W/tests.log"
tail -n 8 "$W/attention.log"
for d in engine engine-pf engine-pdl-split-pf engine-pdl-split; do
  [ -f "$W/$d/bench.md" ] && { echo "$d"; grep -E "^\| (1|8|16|32) \| (none|sgmv)" "$W/$d/bench.md"; }
done
echo "== done $(date -u +%T)"

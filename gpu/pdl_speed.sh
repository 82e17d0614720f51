#!/usr/bin/env bash
# On the GPU machine, one call: programmatic dependent launch in the decode pass (gpu/kernels/
# skinny_gemm.py "Dependent launch", gpu/engine/model.py DECODE_PDL) checked and timed. The PDL tests
# and the skinny GEMM's on the GPU, the engine's logits against transformers + peft with it
# (gpu/check_engine.py --runs fp16_nopdl,fp16_pdl,fp16_sgmv_pdl), then the decode step (gpu/bench_engine.py,
# no transformers) without PDL (engine/: the default when this was written; PDL is on by default since
# 84cab04, so the runs without it say --no-pdl), with PDL and no prefetch (engine-pdl0/),
# with a prefetch of 1,024 elements a W row (engine-pdl/) and 4,096 (engine-pdl4k/), the
# per-shape configuration WIDE,NARROW of PDL_NARROW with and without PDL (engine-narrow/,
# engine-narrow-pdl/), and without PDL once more (engine-again/: the spread within the call).
# About 5 minutes. Needs GIT_COMMIT in the environment. Results: $OUT/pdl-speed.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=pdl-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
NARROW=${PDL_NARROW:-tsk_n32_k128_w4_s6_sk1,tsk_n64_k128_w4_s4_sk2_ab}
step tests env TRITON_INTERPRET=0 timeout 240 python3 -m pytest -q gpu/tests/test_pdl.py gpu/tests/test_skinny_gemm.py
step check timeout 200 python3 gpu/check_engine.py --runs fp16_nopdl,fp16_pdl,fp16_sgmv_pdl --out "$W/check"
B="timeout 150 python3 gpu/bench_engine.py --skip-transformers"
step engine $B --no-pdl --out "$W/engine"
step engine-pdl0 $B --pdl --pdl-prefetch-k 0 --out "$W/engine-pdl0"
step engine-pdl $B --pdl --pdl-prefetch-k 1024 --out "$W/engine-pdl"
step engine-pdl4k $B --pdl --pdl-prefetch-k 4096 --out "$W/engine-pdl4k"
step engine-narrow $B --decode-gemm "$NARROW" --no-pdl --out "$W/engine-narrow"
step engine-narrow-pdl $B --decode-gemm "$NARROW" --pdl --out "$W/engine-narrow-pdl"
step engine-again $B --no-pdl --out "$W/engine-again"
tail -n 3 "$W/tests.log"
grep -E "^fp16(_sgmv)?(_no)?(_pdl)?:" "$W/check.log"
for d in engine engine-pdl0 engine-pdl engine-pdl4k engine-narrow engine-narrow-pdl engine-again; do
  [ -f "$W/$d/bench.md" ] && { echo "$d"; grep -E "^\| (1|8|16|32) \| (none|sgmv)" "$W/$d/bench.md"; }
done
echo "== done $(date -u +%T)"

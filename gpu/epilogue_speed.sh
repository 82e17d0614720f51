#!/usr/bin/env bash
# On the GPU machine, one call: the fused epilogues of gpu/kernels/skinny_gemm.py
# ("Epilogues"; gpu/engine/model.py FUSE_EPILOGUES) checked and timed in the engine's decode step.
# The kernels' tests on the GPU (with the skinny GEMM's and the prologues'), the engine's logits
# against transformers with and without them (gpu/check_engine.py --runs fp16,fp16_fused), then the
# decode step (gpu/bench_engine.py, no transformers) as it runs by default (engine/) and with the
# epilogues (engine-epi/, and engine-epi-N/ with each configuration of EPILOGUE_CONFIGS, default
# two, then with gate_up alone on each of EPILOGUE_GLU_CONFIGS, default one); gpu/bench_epilogues.py
# times each fused GEMM against the launches it replaces (epilogues/). About 6 minutes in all.
# Needs GIT_COMMIT in the environment. Results: $OUT/epilogue-speed.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=epilogue-speed.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step
step tests env TRITON_INTERPRET=0 timeout 240 python3 -m pytest -q gpu/tests/test_fused_epilogues.py \
  gpu/tests/test_skinny_gemm.py gpu/tests/test_fused_prologues.py gpu/tests/test_bench_epilogues.py
step epilogues timeout 240 python3 gpu/bench_epilogues.py --out "$W/epilogues"
step check timeout 200 python3 gpu/check_engine.py --runs fp16,fp16_fused --out "$W/check"
step engine timeout 150 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine"
step engine-epi timeout 150 python3 gpu/bench_engine.py --skip-transformers --fuse-epilogues --out "$W/engine-epi"
i=0
for c in ${EPILOGUE_CONFIGS:-tsk_n16_k128_w4_s6_sk1 tsk_n32_k256_w4_s4_sk1}; do
  i=$((i + 1))
  step "engine-epi-$i" timeout 150 python3 gpu/bench_engine.py --skip-transformers --fuse-epilogues \
    --epilogue-config "$c" --out "$W/engine-epi-$i"
done
for c in ${EPILOGUE_GLU_CONFIGS:-tsk_n16_k128_w4_s6_sk1}; do  # gate_up's own configuration, the others the default
  i=$((i + 1))
  step "engine-epi-$i" timeout 150 python3 gpu/bench_engine.py --skip-transformers --fuse-epilogues \
    --epilogue-glu-config "$c" --out "$W/engine-epi-$i"
done
tail -n 3 "$W/tests.log"
grep -E "^fp16(_fused)?:|fp16_fused +0 " "$W/check.log"
tail -n 3 "$W/epilogues.log"
for d in engine engine-epi "$W"/engine-epi-*; do
  d=$(basename "$d")
  [ -f "$W/$d/bench.md" ] && { echo "$d $(grep -o 'FUSE_EPILOGUES, [^)]*' "$W/$d/bench.md")";
    grep -E "^\| (1|8|16|32|64) \| none" "$W/$d/bench.md"; }
done
echo "== done $(date -u +%T)"

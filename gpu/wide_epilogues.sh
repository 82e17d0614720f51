#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes): the norms and SiLU in the GEMMs' epilogues for the
# decode passes of 17-32 rows (gpu/engine/model.py WIDE_EPILOGUES; gpu/kernels/skinny_gemm.py
# "Epilogues", now with the product transposed and split-K). In batch 32's graph at 129 tokens the
# norms and SiLU took 190 us a step and about 100 launches, and cuBLASLt's gate_up, o_proj and
# down_proj 2.7 ms (gpu/results/tma-gemm-h200-c60468c/).
#   tests       the epilogue and wide-row tests compiled (TRITON_INTERPRET=0), the engine's logits
#               with WIDE_EPILOGUES among them
#   variants-128  the step without LoRA at 128 + 1 tokens, three rotating rounds, batches 16 / 24 / 32,
#               batch 32's graph profiled: wepi (WIDE_EPILOGUES, gate_up's GLU on
#               tsk_n64_k128_w4_s3_sk1_ab), and gate_up's GLU on n64 at 2 stages, on n32 tiles, split in 2
#   pick        the variant with the least step at 32 x 129 (pick.json)
#   variants-2048 the same at 2,048 + 1 tokens, default against the pick, batches 24 / 32
#   engine-pick gpu/bench_engine.py --skip-transformers with the pick's settings
# Needs GIT_COMMIT. Results: $OUT/wide-epilogues.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=wide-epilogues.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
ON="model.WIDE_EPILOGUES=True"
glu() { echo "$ON;model.WIDE_EPILOGUE_GLU_CONFIG='$1'"; }
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_fused_epilogues.py gpu/tests/test_wide_rows.py
step variants-128 timeout 200 python3 gpu/bench_decode_variants.py --out "$W/variants-128" --rounds 3 \
  --rotate --ctx 128 --batches 16,24,32 --profile-batch 32 \
  --variant "wepi:$ON" --variant "glu2:$(glu tsk_n64_k128_w4_s2_sk1_ab)" \
  --variant "glu32:$(glu tsk_n32_k128_w4_s4_sk1_ab)" --variant "glusk2:$(glu tsk_n64_k128_w4_s3_sk2_ab)"
step pick python3 - "$W/variants-128/variants.json" "$W/pick.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
ms = {v: s["32"]["step_ms"] for v, s in d["summary"].items() if s.get("32", {}).get("ok")}
best = min((v for v in ms if v != "default"), key=ms.get)
pick = {"variant": best, "step_ms_32": ms}
json.dump(pick, open(sys.argv[2], "w"), indent=1)
print(json.dumps(pick))
EOF
PV=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['variant'])" "$W/pick.json" 2>/dev/null || echo wepi)
case "$PV" in
  glu2) PSET=$(glu tsk_n64_k128_w4_s2_sk1_ab) ;;
  glu32) PSET=$(glu tsk_n32_k128_w4_s4_sk1_ab) ;;
  glusk2) PSET=$(glu tsk_n64_k128_w4_s3_sk2_ab) ;;
  *) PSET=$ON ;;
esac
echo "pick: $PV: $PSET"
step variants-2048 timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-2048" --rounds 3 \
  --rotate --ctx 2048 --batches 24,32 --profile-batch 32 --variant "pick:$PSET"
step engine-pick timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-pick" --set "$PSET"
tail -n 1 "$W/tests.log"
cat "$W/pick.log"
show_variants 128 2048
show_engine pick
echo "== done $(date -u +%T)"

#!/usr/bin/env bash
# On the GPU machine, one call (about 4 minutes), after gpu/wide_epilogues.sh
# (gpu/results/wide-epilogues-h200-8536348/): with the norms and SiLU in the GEMMs' epilogues at 32
# rows the step's GEMMs took 3,859 us against 3,600 for the plain ones (cuBLASLt's gate_up, o_proj,
# down_proj), eating the 250 us the removed launches saved. Which fused GEMM is slow, and is a
# configuration of it not?
#   parts       gpu/bench_epilogues.py --batches 32 on o_proj, down_proj (residual epilogue, split-K
#               configs) and gate_up (GLU configs), against F.linear (cuBLASLt) and the norm / SiLU
#               launches it replaces ("unfused linear"), float64-checked
#   pick        the residual config with the least o_proj + down_proj, the GLU config with the least
#               gate_up (pick.json)
#   variants-*  the step without LoRA at 128 + 1 (batches 24, 32) and 2,048 + 1 tokens (batch 32), three
#               rotating rounds, batch 32's graph profiled: WIDE_EPILOGUES with the picks
# Needs GIT_COMMIT. Results: $OUT/epilogue-parts.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=epilogue-parts.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
RES="tsk_n64_k128_w4_s4_sk2_ab,tsk_n64_k128_w4_s6_sk2_ab,tsk_n64_k128_w4_s4_sk3_ab,tsk_n64_k64_w4_s8_sk2_ab"
RES="$RES,tsk_n32_k128_w4_s4_sk2_ab,tsk_n64_k128_w4_s4_sk4_ab"
GLU="tsk_n64_k128_w4_s2_sk1_ab,tsk_n64_k128_w4_s3_sk1_ab,tsk_n32_k128_w4_s4_sk1_ab,tsk_n32_k128_w4_s6_sk1_ab"
GLU="$GLU,tsk_n64_k64_w4_s4_sk1_ab,tsk_n32_k128_w4_s4_sk1,tsk_n64_k128_w4_s2_sk2_ab"
step parts timeout 240 python3 gpu/bench_epilogues.py --out "$W/parts" --batches 32 --shapes o,down,gate_up \
  --configs "$RES" --glu-configs "$GLU" --gemm-config tsk_n64_k128_w4_s4_sk1_ab
step pick python3 - "$W/parts/epilogues.csv" "$W/pick.json" "$RES" "$GLU" <<'PY'
import csv, json, sys
us = {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] == "ok":
        us[(r["shape"], r["variant"])] = float(r["us"])
res = [f"fused {c}" for c in sys.argv[3].split(",")]
glu = [f"fused {c}" for c in sys.argv[4].split(",")]
rc = {c: us[("o", c)] + us[("down", c)] for c in res if ("o", c) in us and ("down", c) in us}
gc = {c: us[("gate_up", c)] for c in glu if ("gate_up", c) in us}
pick = {"resid": min(rc, key=rc.get).split()[1], "glu": min(gc, key=gc.get).split()[1],
        "o_plus_down_us": rc, "gate_up_us": gc,
        "linear_us": {s: us.get((s, "gemm linear")) for s in ("o", "down", "gate_up")},
        "unfused_linear_us": {s: us.get((s, "unfused linear")) for s in ("o", "down", "gate_up")}}
json.dump(pick, open(sys.argv[2], "w"), indent=1)
print(json.dumps(pick))
PY
PICK=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print(p['resid'], p['glu'])" "$W/pick.json" \
  2>/dev/null || echo "tsk_n64_k128_w4_s4_sk2_ab tsk_n64_k128_w4_s2_sk1_ab")
read -r PR PG <<< "$PICK"
PSET="model.WIDE_EPILOGUES=True;model.WIDE_EPILOGUE_NARROW_CONFIG='$PR';model.WIDE_EPILOGUE_GLU_CONFIG='$PG'"
echo "pick: $PSET"
step variants-128 timeout 120 python3 gpu/bench_decode_variants.py --out "$W/variants-128" --rounds 3 \
  --rotate --ctx 128 --batches 24,32 --profile-batch 32 --variant "pick:$PSET"
step variants-2048 timeout 90 python3 gpu/bench_decode_variants.py --out "$W/variants-2048" --rounds 3 \
  --rotate --ctx 2048 --batches 32 --profile-batch 32 --variant "pick:$PSET"
grep -E "^(o|down|gate_up) " "$W/parts.log" | head -40
cat "$W/pick.log"
show_variants 128 2048
echo "== done $(date -u +%T)"

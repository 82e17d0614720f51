#!/usr/bin/env bash
# On the GPU machine, one call (about 6 minutes), after gpu/wide_nopdl.sh
# (gpu/results/wide-nopdl-h200-da9b307/): at 24 rows o_proj and down_proj through the split-K
# skinny GEMM beat cuBLASLt in the step (4.538 against 4.746 ms at 24 x 129), at 32 rows they did
# not (4.666 against 4.632), and only one split-K configuration of the transposed product was ever
# timed there. Here a spread of them.
#   tests       the wide rows' tests compiled (TRITON_INTERPRET=0)
#   gemm        gpu/bench_gemm.py --batches 24,32 --quick: every weight GEMM of the step against
#               cuBLAS / cuBLASLt, float64-checked, with split-K configurations of the transposed
#               skinny GEMM (2-4 slices, 32-128-row W tiles)
#   pick        the configuration with the least o_proj + down_proj time at 24 + 32 rows (pick.json),
#               and whether it beats cuBLASLt at 32 (then it takes every wide batch, else batches of
#               up to 24 rows: SKINNY_WIDE_NARROW_MAX_M)
#   variants-*  the step without LoRA at 128 + 1 and 1,024 + 1 tokens, three rotating rounds, batch 16,
#               24, 32 (batch 32's graph profiled): qonlynp (qkv alone through the skinny GEMM, no PDL in
#               the wide passes), q24 (o_proj and down_proj too, on the committed split-K config, up to
#               24 rows), pick (on the picked one, as pick.json says)
#   engine-pick gpu/bench_engine.py --skip-transformers with pick's settings
# Needs GIT_COMMIT. Results: $OUT/wide-split.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=wide-split.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
SK="tsk_n64_k128_w4_s4_sk1_ab"
QSK="model.SKINNY_WIDE_MAX_M=32;model.SKINNY_WIDE_CONFIG='$SK';model.SKINNY_WIDE_CUBLAS_N=16384;model.SKINNY_WIDE_PDL=False"
CONFIGS="$SK,tsk_n64_k128_w4_s4_sk2_ab,tsk_n64_k128_w4_s4_sk4_ab,tsk_n32_k128_w4_s4_sk2_ab,tsk_n32_k128_w4_s4_sk4_ab"
CONFIGS="$CONFIGS,tsk_n64_k256_w4_s3_sk2_ab,tsk_n64_k128_w4_s6_sk2_ab,tsk_n64_k128_w8_s4_sk2_ab,tsk_n64_k64_w4_s8_sk2_ab"
CONFIGS="$CONFIGS,tsk_n128_k128_w8_s3_sk4_ab,tsk_n64_k128_w4_s3_sk3_ab,tsk_n32_k256_w4_s3_sk2_ab"
step tests env TRITON_INTERPRET=0 timeout 120 python3 -m pytest -q gpu/tests/test_wide_rows.py
step gemm timeout 220 python3 gpu/bench_gemm.py --batches 24,32 --quick --out "$W/gemm" --triton-configs "$CONFIGS"
step pick python3 - "$W/gemm/gemm.csv" "$W/pick.json" <<'EOF'
import csv, json, sys
us = {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["shape"] in ("o", "down") and r["status"] == "ok":
        us.setdefault((r["variant"], int(r["batch"])), {})[r["shape"]] = float(r["us_median"])
cost = {k: v["o"] + v["down"] for k, v in us.items() if len(v) == 2}
names = {v for v, _ in cost if v.startswith("tsk_") and (v, 24) in cost and (v, 32) in cost}
best = min(names, key=lambda v: cost[(v, 24)] + cost[(v, 32)])
cub = {b: cost.get(("linear_cublaslt", b)) for b in (24, 32)}
all_rows = cub[32] is not None and cost[(best, 32)] < cub[32]
pick = {"config": best, "o_plus_down_us": {b: cost[(best, b)] for b in (24, 32)}, "cublaslt_us": cub,
        "narrow_max_m": None if all_rows else 24,
        "ranking": sorted(([v, cost[(v, 24)], cost[(v, 32)]] for v in names), key=lambda t: t[1] + t[2])}
json.dump(pick, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: pick[k] for k in ("config", "o_plus_down_us", "cublaslt_us", "narrow_max_m")}))
EOF
PICK=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print(p['config'], p['narrow_max_m'])" \
  "$W/pick.json" 2>/dev/null || echo "tsk_n64_k128_w4_s4_sk2_ab 24")
read -r PC PM <<< "$PICK"
PSET="$QSK;model.SKINNY_WIDE_NARROW_CONFIG='$PC';model.SKINNY_WIDE_NARROW_MAX_M=$PM"
echo "pick: $PSET"
for ctx in 128 1024; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 16,24,32 --profile-batch 32 \
    --variant "qonlynp:$QSK;model.SKINNY_WIDE_NARROW_CONFIG=None" \
    --variant "q24:$QSK;model.SKINNY_WIDE_NARROW_MAX_M=24" --variant "pick:$PSET"
done
step engine-pick timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-pick" --set "$PSET"
tail -n 1 "$W/tests.log"
grep -E "^ *(24|32) \|" "$W/gemm.log" | head -4
cat "$W/pick.log"
show_variants 128 1024
show_engine pick
echo "== done $(date -u +%T)"

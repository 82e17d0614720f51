#!/usr/bin/env bash
# On the GPU machine, one call (about 7 minutes): the skinny GEMM with its x and W tiles read through
# tensor descriptors (TMA; config suffix _tma, gpu/kernels/skinny_gemm.py skinny_gemm_tma_kernel)
# against the pointer-load kernel and cuBLASLt. At batch 32 o_proj + down_proj on cuBLASLt took 36.7
# us a layer in the step's graph against 29 at the copy bandwidth (gpu/results/peel-h200-d5cf0fd/),
# and no pointer-load split-K config of twelve beat cuBLASLt there (wide-split-h200-5fe82d2/).
#   tests      the skinny GEMM's and the wide rows' tests compiled (TRITON_INTERPRET=0)
#   gemm       gpu/bench_gemm.py --batches 8,16,24,32 --quick: every weight GEMM of the step, float64-
#              checked, the engine's configs with and without _tma and a spread of _tma configs
#   pick       pick.json: the _tma config with the least o_proj + down_proj at 32 rows (narrow), the
#              one-slice _ab _tma config with the least qkv + lm_head at 32 rows (wide), the _tma
#              config with the least 4-layer step at 8 + 16 rows (small), each against what the
#              engine runs there now
#   variants-* the step without LoRA at 128 + 1 and 2,048 + 1 tokens, three rotating rounds, batches 1 /
#              8 / 16 / 24 / 32, batch 32's graph profiled: narrow (o_proj and down_proj at 17-32 rows
#              on the narrow pick), wide (and qkv, lm_head on the wide pick), small (1-16 rows on the
#              small pick), all (the three)
#   engine-all gpu/bench_engine.py --skip-transformers with all's settings
# Needs GIT_COMMIT. Results: $OUT/tma-gemm.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
ARCHIVE=tma-gemm.tar.gz
. gpu/common/steps.sh  # OUT, W (the work folder), pack, step, show_variants, show_engine
BASE="tsk_n32_k128_w4_s6_sk1,tsk_n64_k128_w4_s4_sk1_ab,tsk_n64_k128_w4_s4_sk2_ab"
TMA="tsk_n32_k128_w4_s6_sk1_tma,tsk_n32_k128_w4_s8_sk1_tma,tsk_n64_k128_w4_s6_sk1_ab_tma,tsk_n64_k128_w4_s4_sk1_ab_tma"
TMA="$TMA,tsk_n64_k128_w4_s4_sk2_ab_tma,tsk_n64_k128_w4_s6_sk2_ab_tma,tsk_n64_k64_w4_s8_sk2_ab_tma"
TMA="$TMA,tsk_n64_k128_w4_s3_sk3_ab_tma,tsk_n64_k128_w4_s4_sk4_ab_tma,tsk_n128_k128_w4_s4_sk4_ab_tma"
TMA="$TMA,tsk_n64_k256_w4_s3_sk2_ab_tma,tsk_n64_k128_w8_s4_sk2_ab_tma,tsk_n32_k128_w4_s6_sk2_tma"
step tests env TRITON_INTERPRET=0 timeout 150 python3 -m pytest -q gpu/tests/test_skinny_gemm.py gpu/tests/test_wide_rows.py
step gemm timeout 200 python3 gpu/bench_gemm.py --batches 8,16,24,32 --quick --out "$W/gemm" --triton-configs "$BASE,$TMA"
step pick python3 - "$W/gemm/gemm.csv" "$W/pick.json" <<'EOF'
import csv, json, sys
us = {}
for r in csv.DictReader(open(sys.argv[1])):
    if r["status"] == "ok":
        us[(r["shape"], r["variant"], int(r["batch"]))] = float(r["us_median"])
names = {v for _, v, _ in us}
def cost(v, shapes, batches):
    try:
        return sum(us[(s, v, b)] for s in shapes for b in batches)
    except KeyError:
        return None
def best(cands, shapes, batches):
    scored = [(c, cost(c, shapes, batches)) for c in cands]
    scored = sorted((t for t in scored if t[1] is not None), key=lambda t: t[1])
    return scored[0][0], scored
tma = sorted(n for n in names if n.endswith("_tma"))
narrow, nr = best([n for n in tma if "_ab" in n], ("o", "down"), (32,))
wide, wr = best([n for n in tma if "_ab" in n and "_sk1_" in n], ("qkv", "lm_head"), (32,))
small, sr = best(tma, ("step",), (8, 16))
pick = {"narrow": narrow, "wide": wide, "small": small,
        "narrow_us_32": cost(narrow, ("o", "down"), (32,)),
        "narrow_cublaslt_us_32": cost("linear_cublaslt", ("o", "down"), (32,)),
        "wide_us_32": cost(wide, ("qkv", "lm_head"), (32,)),
        "wide_now_us_32": cost("tsk_n64_k128_w4_s4_sk1_ab", ("qkv", "lm_head"), (32,)),
        "small_step_us_8_16": cost(small, ("step",), (8, 16)),
        "small_now_step_us_8_16": cost("tsk_n32_k128_w4_s6_sk1", ("step",), (8, 16)),
        "rankings": {"narrow": nr, "wide": wr, "small": sr}}
json.dump(pick, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: v for k, v in pick.items() if k != "rankings"}))
EOF
PICK=$(python3 -c "import json,sys; p=json.load(open(sys.argv[1])); print(p['narrow'], p['wide'], p['small'])" \
  "$W/pick.json" 2>/dev/null || echo "tsk_n64_k128_w4_s4_sk2_ab_tma tsk_n64_k128_w4_s4_sk1_ab_tma tsk_n32_k128_w4_s6_sk1_tma")
read -r PN PW PS <<< "$PICK"
NARROW="model.SKINNY_WIDE_NARROW_CONFIG='$PN';model.SKINNY_WIDE_NARROW_MAX_M=None"
WIDE="$NARROW;model.SKINNY_WIDE_CONFIG='$PW'"
SMALL="model.SKINNY_CONFIG='$PS'"
echo "narrow: $NARROW / wide: $WIDE / small: $SMALL"
for ctx in 128 2048; do
  step "variants-$ctx" timeout 150 python3 gpu/bench_decode_variants.py --out "$W/variants-$ctx" --rounds 3 \
    --rotate --ctx "$ctx" --batches 1,8,16,24,32 --profile-batch 32 \
    --variant "narrow:$NARROW" --variant "wide:$WIDE" --variant "small:$SMALL" --variant "all:$WIDE;$SMALL"
done
step engine-all timeout 90 python3 gpu/bench_engine.py --skip-transformers --out "$W/engine-all" --set "$WIDE;$SMALL"
tail -n 1 "$W/tests.log"
grep -E "^ *(8|16|24|32) \|" "$W/gemm.log" | head -8
cat "$W/pick.log"
show_variants 128 2048
show_engine all
echo "== done $(date -u +%T)"

# Sourced by the one-call GPU scripts (gpu/decode_speed.sh, gpu/diag_decode_timing.sh): a work
# folder under $OUT and a `step` that runs one command into its own log and packs the work folder
# into $OUT/$ARCHIVE after it, so that a call stopped by its time limit still returns what finished.
# Set ARCHIVE (say speed.tar.gz) before sourcing.
OUT=${OUT:-/tmp/out}
W="$OUT/work"
mkdir -p "$W"
export PYTHONUNBUFFERED=1
pack() { tar -C "$W" -czf "$OUT/$ARCHIVE" .; }
step() {  # step NAME COMMAND...: runs it, its output in NAME.log, then packs
  local name=$1
  shift
  echo "== $name $(date -u +%T)"
  "$@" > "$W/$name.log" 2>&1
  echo "rc=$? $(tail -n 1 "$W/$name.log")"
  pack
}
# The short tables a call prints last: show_variants CTX... (each variants-CTX/variants.md's step
# table), show_engine NAME... (each engine-NAME/bench.md's rows without LoRA).
show_variants() {
  local ctx
  for ctx in "$@"; do
    [ -f "$W/variants-$ctx/variants.md" ] && sed -n '/^| variant/,/^$/p' "$W/variants-$ctx/variants.md"
  done
}
show_engine() {
  local e
  for e in "$@"; do
    echo "engine-$e"; [ -f "$W/engine-$e/bench.md" ] && grep -E "^\| (1|8|16|32|64) \| none" "$W/engine-$e/bench.md"
  done
}

#!/usr/bin/env bash
# The working tree that travels to the GPU machine (the device tool) is limited to 64 MiB, and the
# recorded runs under traces/repeats/ (about 36 MB, read by `loratwin validate` and the lease
# scripts here, never by a command on the GPU machine) put the tree over it. This parks them beside
# the checkout for the device calls and puts them back, losing nothing:
#   bash scripts/park_repeats.sh park      # before the device calls (refuses if something is parked)
#   bash scripts/park_repeats.sh restore   # after them, before installing a lease (refuses to overwrite)
#   bash scripts/park_repeats.sh size      # bytes that would travel now (tracked + untracked, not ignored)
# While parked, git status shows traces/repeats/ deleted: restore before committing anything.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
parked="$repo/../.parked-$(basename "$repo")-repeats"
size() {
  git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    if [ -f "$f" ]; then stat -c %s "$f"; fi
  done | awk '{s += $1} END {printf "%d bytes (%.1f MiB) would travel; the limit is 64 MiB\n", s, s / 1048576}'
}
case "${1:-}" in
  park)
    [ -e "$parked" ] && { echo "$parked exists: restore first" >&2; exit 1; }
    [ -d traces/repeats ] || { echo "traces/repeats: not here" >&2; exit 1; }
    mv traces/repeats "$parked"
    echo "parked traces/repeats in $parked"
    size ;;
  restore)
    [ -e "$parked" ] || { echo "nothing parked ($parked)" >&2; exit 1; }
    [ -e traces/repeats ] && { echo "traces/repeats exists: not overwriting it; $parked kept" >&2; exit 1; }
    mv "$parked" traces/repeats
    echo "restored traces/repeats" ;;
  size) size ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac

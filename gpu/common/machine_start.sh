# Sourced by the GPU scripts that say which machine start a call ran in (gpu/record_runs.sh,
# gpu/engine_confirm.sh): the first call of a start writes the time to $MACHINE_START_FILE (default
# /tmp/loratwin-machine-start, which a fresh machine does not have), later calls read it. Sets
# start_id (that time), how ("new: this call is its first" or "seen by an earlier call") and
# new_start (1 on a start's first call, else empty).
marker=${MACHINE_START_FILE:-/tmp/loratwin-machine-start}
new_start=
if [ ! -s "$marker" ]; then
  new_start=1
  date -u +%Y-%m-%dT%H:%M:%SZ > "$marker"
  how="new: this call is its first"
else
  how="seen by an earlier call"
fi
start_id=$(cat "$marker")

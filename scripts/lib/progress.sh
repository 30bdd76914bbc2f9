# Progress for long shell steps (sourced by setup.sh). Needs a `log` function.

# Runs a long step quietly with a progress line every STEP_BEAT_SECONDS (10) seconds; its output goes
# to a log that is shown if it fails, and the script exits with its status. A first set-up that takes
# minutes (apt-get, compiling better-sqlite3) never looks stuck, and a failure still shows why.
step() {
  local what=$1 started=$SECONDS out status
  shift
  out=$(mktemp)
  log "$what…"
  "$@" >"$out" 2>&1 &
  local pid=$!
  while ! wait_up_to "${STEP_BEAT_SECONDS:-10}" "$pid"; do
    log "  $what: still working ($((SECONDS - started)) s)"
  done
  wait "$pid" && status=0 || status=$?
  if [ "$status" -ne 0 ]; then
    log "$what failed (exit $status); its last lines:"
    tail -n 40 "$out" >&2
    rm -f "$out"
    exit "$status"
  fi
  rm -f "$out"
  log "$what: done in $((SECONDS - started)) s"
}

# True once process $2 has ended, false if it still runs after $1 seconds.
wait_up_to() {
  local i
  for ((i = 0; i < $1 * 10; i++)); do
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}

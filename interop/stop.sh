#!/usr/bin/env bash
# Stops interop servers started by interop/start.sh: TERM to each server's
# process group (from $PLTEST_INTEROP_RUN/NAME.pid), KILL after 20s, and
# removes the pid file and the server's lines from the env file.
#
# Usage: interop/stop.sh [NAME...]   (default: every NAME.pid in the run dir)
set -uo pipefail
source "$(dirname "$0")/lib.sh"

RUN=$PLTEST_INTEROP_RUN
names=("$@")
if ((${#names[@]} == 0)); then
  for f in "$RUN"/*.pid; do [[ -e "$f" ]] && names+=("$(basename "$f" .pid)"); done
fi

for name in "${names[@]}"; do
  pidfile="$RUN/$name.pid"
  [[ -f "$pidfile" ]] || continue
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 20s: KILL"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$pidfile"
done
if ((${#names[@]})) && [[ -f "$RUN/env" ]]; then
  for f in "$RUN"/*.pid; do [[ -e "$f" ]] && exit 0; done
  rm -f "$RUN/env" # nothing left running
fi
exit 0

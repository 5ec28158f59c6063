#!/usr/bin/env bash
# Stops every server that up.sh started (by recorded pid) and removes the env file.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ -d "$PID_DIR" ] || { log "nothing to stop"; exit 0; }

shopt -s nullglob
pids=()
for f in "$PID_DIR"/*.pid; do
	name="$(basename "$f" .pid)"
	pid="$(cat "$f")"
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		sig="$(cat "$PID_DIR/$name.stopsig" 2>/dev/null || echo TERM)"
		log "stopping $name (pid $pid, SIG$sig)"
		kill -"$sig" "$pid" 2>/dev/null || true
		pids+=("$pid:$name")
	fi
	rm -f "$f" "$PID_DIR/$name.ports" "$PID_DIR/$name.stopsig"
done

deadline=$((SECONDS + ${SLUICE_TESTENV_STOP_TIMEOUT:-15}))
for entry in "${pids[@]}"; do
	pid="${entry%%:*}"
	name="${entry#*:}"
	while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name (pid $pid) did not stop; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
done
rm -f "$ENV_FILE"
log "stopped"

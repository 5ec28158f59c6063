#!/usr/bin/env bash
# Builds (if needed) and starts the sluice local test stack on 127.0.0.1,
# waits until every server answers, and writes .testenv/env.
# Stop everything with down.sh (make testenv-down).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=build.sh
. "$TESTENV_DIR/build.sh" # defines the *_bin helpers only

start_ts=$SECONDS
"$TESTENV_DIR/build.sh" all

mkdir -p "$PID_DIR" "$LOG_DIR" "$DATA_DIR"
# Servers inherit this as working directory; keep stray files out of the repo.
cd "$RUN_DIR"

# --- helpers -----------------------------------------------------------------

pid_of() { # prints the recorded pid of a running service, or fails
	local f="$PID_DIR/$1.pid" pid
	[ -f "$f" ] || return 1
	pid="$(cat "$f")"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

port_open() { # port_open PORT: true when something accepts TCP on 127.0.0.1:PORT
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# http_status PORT METHOD PATH [EXTRA_HEADER]: prints the HTTP status code.
http_status() {
	local port="$1" method="$2" path="$3" extra="${4:-}" line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf '%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n%s\r\n' \
		"$method" "$path" "${extra:+$extra$'\r\n'}" >&3
	IFS= read -r -t 3 line <&3 || { exec 3>&-; return 1; }
	exec 3>&-
	line="${line%$'\r'}"
	echo "${line#* }" | cut -d' ' -f1
}

redis_ping() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'PING\r\n' >&3
	IFS= read -r -t 3 line <&3 || { exec 3>&-; return 1; }
	exec 3>&-
	[ "${line%$'\r'}" = "+PONG" ]
}

fail_with_log() { # fail_with_log NAME MESSAGE
	log "$2"
	if [ -f "$LOG_DIR/$1.log" ]; then
		log "last lines of $LOG_DIR/$1.log:"
		tail -n 40 "$LOG_DIR/$1.log" | sed 's/^/    /' >&2
	fi
	log "other servers may still be running; stop them with 'make testenv-down'"
	exit 1
}

# start NAME PORT... -- CMD...: starts CMD in its own session, records its pid.
# Refuses to start when one of the ports is already taken by something else.
start() {
	local name="$1" ports=() p
	shift
	while [ "$1" != "--" ]; do ports+=("$1"); shift; done
	shift
	if pid="$(pid_of "$name")"; then
		if [ "$(cat "$PID_DIR/$name.ports" 2>/dev/null)" != "${ports[*]}" ]; then
			die "$name is already running (pid $pid) on other ports ($(cat "$PID_DIR/$name.ports" 2>/dev/null)); run 'make testenv-down' first"
		fi
		log "$name already running (pid $pid)"
		return 0
	fi
	for p in "${ports[@]}"; do
		if port_open "$p"; then
			fail_with_log "$name" "cannot start $name: 127.0.0.1:$p is already in use by another process (set the SLUICE_TESTENV_*_PORT variables to move it)"
		fi
	done
	log "starting $name on 127.0.0.1:$(IFS=,; echo "${ports[*]}")"
	: >"$LOG_DIR/$name.log"
	setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
	echo $! >"$PID_DIR/$name.pid"
	echo "${ports[*]}" >"$PID_DIR/$name.ports"
}

# wait_ready NAME CHECK...: polls CHECK until it succeeds, the process dies,
# or READY_TIMEOUT seconds pass.
wait_ready() {
	local name="$1" deadline pid
	shift
	deadline=$((SECONDS + READY_TIMEOUT))
	pid="$(cat "$PID_DIR/$name.pid")"
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PID_DIR/$name.pid"
			fail_with_log "$name" "$name (pid $pid) exited before it answered"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			fail_with_log "$name" "$name (pid $pid) did not answer within ${READY_TIMEOUT}s"
		fi
		sleep 0.2
	done
}

fresh_dir() { # empties a data dir unless the service is already running
	if ! pid_of "$1" >/dev/null && [ "${SLUICE_TESTENV_KEEP_DATA:-0}" != 1 ]; then
		rm -rf "${DATA_DIR:?}/$1"
	fi
	mkdir -p "$DATA_DIR/$1"
}

kafka_ready() {
	local p
	for p in ${KAFKA_PORTS//,/ }; do port_open "$p" || return 1; done
}
kinesis_ready() { # kinesalite answers unsigned requests with 400 MissingAuthenticationToken
	[ -n "$(http_status "$KINESIS_PORT" POST /)" ]
}
es_ready() {
	local auth
	auth="Authorization: Basic $(printf '%s:%s' "$ES_USERNAME" "$ES_PASSWORD" | base64 -w0)"
	[ "$(http_status "$ES_PORT" GET /es/ "$auth")" = 200 ]
}

# preflight NAME PORT...: fails early when a port of a service that is not
# already running (by our pid file) is taken by something else.
preflight() {
	local name="$1" p
	shift
	pid_of "$name" >/dev/null && return 0
	for p in "$@"; do
		case "$p" in
		'' | *[!0-9]*) die "$name: bad port '$p'" ;;
		esac
		if port_open "$p"; then
			die "cannot start $name: 127.0.0.1:$p is already in use by another process (set the SLUICE_TESTENV_*_PORT variables to move it)"
		fi
	done
}

# --- servers -----------------------------------------------------------------

IFS=, read -r -a kafka_ports <<<"$KAFKA_PORTS"
preflight kafka "${kafka_ports[@]}"
preflight kinesis "$KINESIS_PORT"
preflight mongo "$MONGO_PORT"
preflight elasticsearch "$ES_PORT"
preflight redis "$REDIS_PORT"
start kafka "${kafka_ports[@]}" -- "$(kfake_bin)" \
	-ports "$KAFKA_PORTS" \
	-min-session-timeout "${SLUICE_TESTENV_KAFKA_MIN_SESSION_TIMEOUT:-6s}"

start kinesis "$KINESIS_PORT" -- env SLUICE_TESTENV_KINESIS_DELAY_MS="${SLUICE_TESTENV_KINESIS_DELAY_MS:-50}" \
	node "$TESTENV_DIR/kinesalite/server.js" "$KINESIS_PORT"

fresh_dir mongo
start mongo "$MONGO_PORT" -- "$(ferretdb_bin)" \
	--handler=sqlite \
	--sqlite-url="file:$DATA_DIR/mongo/" \
	--listen-addr="127.0.0.1:$MONGO_PORT" \
	--debug-addr=- \
	--telemetry=disable \
	--state-dir="$DATA_DIR/mongo" \
	--log-level="${SLUICE_TESTENV_MONGO_LOG_LEVEL:-warn}"

fresh_dir elasticsearch
start elasticsearch "$ES_PORT" -- env \
	ZINC_SERVER_ADDRESS=127.0.0.1 \
	ZINC_SERVER_PORT="$ES_PORT" \
	ZINC_DATA_PATH="$DATA_DIR/elasticsearch" \
	ZINC_FIRST_ADMIN_USER="$ES_USERNAME" \
	ZINC_FIRST_ADMIN_PASSWORD="$ES_PASSWORD" \
	ZINC_PLUGIN_ES_VERSION=8.11.0 \
	ZINC_TELEMETRY=false \
	ZINC_SENTRY=false \
	ZINC_PROFILER=false \
	GIN_MODE=release \
	"$(zinc_bin)"

fresh_dir redis
start redis "$REDIS_PORT" -- redis-server \
	--bind 127.0.0.1 \
	--port "$REDIS_PORT" \
	--save "" \
	--appendonly no \
	--daemonize no \
	--dir "$DATA_DIR/redis" \
	--logfile ""

wait_ready kafka kafka_ready
wait_ready kinesis kinesis_ready
wait_ready mongo port_open "$MONGO_PORT"
wait_ready elasticsearch es_ready
wait_ready redis redis_ping "$REDIS_PORT"

brokers=""
for p in "${kafka_ports[@]}"; do brokers="${brokers:+$brokers,}127.0.0.1:$p"; done

tmp="$ENV_FILE.tmp"
cat >"$tmp" <<ENV
# Written by internal/testenv/up.sh; load with: . .testenv/env
export SLUICE_KAFKA_BROKERS=$brokers
export SLUICE_KINESIS_ENDPOINT=http://127.0.0.1:$KINESIS_PORT
export SLUICE_MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/
export SLUICE_ES_URL=http://127.0.0.1:$ES_PORT/es
export SLUICE_ES_USERNAME=$ES_USERNAME
export SLUICE_ES_PASSWORD=$ES_PASSWORD
export SLUICE_REDIS_ADDR=127.0.0.1:$REDIS_PORT
ENV
mv "$tmp" "$ENV_FILE"

log "all servers answer ($((SECONDS - start_ts))s); addresses in $ENV_FILE:"
grep '^export' "$ENV_FILE" | sed 's/^export /    /' >&2

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
zinc_ready() {
	local auth
	auth="Authorization: Basic $(printf '%s:%s' "$ES_USERNAME" "$ES_PASSWORD" | base64 -w0)"
	[ "$(http_status "$ES_PORT" GET /es/ "$auth")" = 200 ]
}
opensearch_ready() { # 200 once the cluster is at least yellow (408 before)
	[ "$(http_status "$ES_PORT" GET '/_cluster/health?wait_for_status=yellow&timeout=1s')" = 200 ]
}
# kafka_node_ready ID PORT: the node logged that it started and takes connections.
kafka_node_ready() {
	grep -q 'Kafka Server started' "$LOG_DIR/kafka-$1.log" && port_open "$2"
}

# java_opts HEAP: JVM flags shared by the Java servers.
java_opts() {
	printf '%s\n' "-Xms$1" "-Xmx$1" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Dfile.encoding=UTF-8
}

# start_kafka formats (when fresh) and starts one combined broker+controller
# KRaft node per port in kafka_ports; node i also listens on kafka_cports[i].
start_kafka() {
	local n=${#kafka_ports[@]} rf voters="" i dir props jars cluster_id opts
	jars="$(kafka_dir)/jars/*"
	rf=$((n < 3 ? n : 3))
	for i in "${!kafka_ports[@]}"; do
		voters="${voters:+$voters,}$((i + 1))@127.0.0.1:${kafka_cports[$i]}"
	done
	cluster_id="${SLUICE_TESTENV_KAFKA_CLUSTER_ID:-$(kafka_cluster_id)}"
	mapfile -t opts < <(java_opts "$KAFKA_HEAP")
	for i in "${!kafka_ports[@]}"; do
		local name="kafka-$((i + 1))"
		if pid_of "$name" >/dev/null; then
			start "$name" "${kafka_ports[$i]}" "${kafka_cports[$i]}" -- true
			continue
		fi
		fresh_dir "$name"
		dir="$DATA_DIR/$name"
		props="$dir/server.properties"
		write_kafka_properties "$((i + 1))" "${kafka_ports[$i]}" "${kafka_cports[$i]}" "$voters" "$rf" "$dir" >"$props"
		write_kafka_log4j >"$dir/log4j2.properties"
		if [ ! -f "$dir/logs/meta.properties" ]; then
			log "formatting $name storage (cluster $cluster_id)"
			if ! format_kafka_storage "$jars" "$cluster_id" "$props" "$dir/log4j2.properties" "$LOG_DIR/$name-format.log"; then
				fail_with_log "$name-format" "formatting $name storage failed"
			fi
		fi
		start "$name" "${kafka_ports[$i]}" "${kafka_cports[$i]}" -- java "${opts[@]}" \
			-Dlog4j2.configurationFile="$dir/log4j2.properties" -Dkafka.logs.dir="$dir" \
			-cp "$jars" kafka.Kafka "$props"
	done
}

# write_kafka_properties ID PORT CONTROLLER_PORT VOTERS RF DIR: prints the
# server.properties of one node, tuned for tests (no initial rebalance delay,
# internal topics that fit the cluster size).
write_kafka_properties() {
	local id="$1" port="$2" cport="$3" voters="$4" rf="$5" dir="$6" min_session
	min_session="${SLUICE_TESTENV_KAFKA_MIN_SESSION_TIMEOUT_MS:-1000}"
	cat <<PROPS
# Written by internal/testenv/up.sh for the local test stack.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/logs
num.partitions=${SLUICE_TESTENV_KAFKA_PARTITIONS:-1}
default.replication.factor=$rf
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=$min_session
group.consumer.min.session.timeout.ms=$min_session
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
PROPS
}

write_kafka_log4j() {
	cat <<'LOG4J'
status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = out
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.main.name = kafka.Kafka
logger.main.level = INFO
LOG4J
}

# start_opensearch starts one OpenSearch node (opensearch/TestNode.java) with
# HTTP on ES_PORT and transport on ES_TRANSPORT_PORT, both on 127.0.0.1.
start_opensearch() {
	local dir opts home="$DATA_DIR/opensearch"
	dir="$(opensearch_dir)"
	fresh_dir opensearch
	mkdir -p "$home/tmp"
	mapfile -t opts < <(java_opts "$OPENSEARCH_HEAP")
	start opensearch "$ES_PORT" "$ES_TRANSPORT_PORT" -- java "${opts[@]}" \
		-Djava.io.tmpdir="$home/tmp" -Dlog4j2.disable.jmx=true -Dio.netty.allocator.numDirectArenas=0 \
		-cp "$dir/jars/*:$dir/classes" TestNode "$home" \
		http.port="$ES_PORT" transport.port="$ES_TRANSPORT_PORT" \
		cluster.routing.allocation.disk.threshold_enabled=false \
		action.auto_create_index=true \
		thread_pool.write.queue_size="${SLUICE_TESTENV_ES_WRITE_QUEUE_SIZE:-10000}"
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

# --- PostgreSQL (FerretDB's backend) ------------------------------------------

# PostgreSQL refuses to run as root: as root, run its programs as the
# Debian package's postgres user (setpriv execs, so the recorded pid is the
# postmaster's own).
pg_as=()
if [ "$(id -u)" = 0 ]; then
	pg_as=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

# pg_data_dir prints the cluster directory: .testenv/data/postgresql, or, when
# the postgres user cannot reach that path (a checkout under /root), a
# directory under /tmp named after this stack's run directory.
pg_data_dir() {
	if [ ${#pg_as[@]} -gt 0 ] && ! "${pg_as[@]}" test -x "$DATA_DIR" 2>/dev/null; then
		echo "/tmp/sluice-testenv-pg-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-12)"
	else
		echo "$DATA_DIR/postgresql"
	fi
}

# start_postgresql creates (when fresh) and starts a private cluster on
# 127.0.0.1:PG_PORT: no Unix socket, trust authentication (loopback only),
# durability off (fsync, synchronous_commit, full_page_writes): a test server.
start_postgresql() {
	local bin dir
	bin="$(pg_bin_dir)"
	[ -n "$bin" ] || die "PostgreSQL is not installed ('internal/testenv/build.sh postgresql' installs it)"
	dir="$(pg_data_dir)"
	if ! pid_of postgresql >/dev/null && { [ "${SLUICE_TESTENV_KEEP_DATA:-0}" != 1 ] || [ ! -f "$dir/PG_VERSION" ]; }; then
		rm -rf "${dir:?}"
		mkdir -p "$dir"
		chmod 700 "$dir"
		if [ ${#pg_as[@]} -gt 0 ]; then chown postgres: "$dir"; fi
		log "initialising PostgreSQL cluster in $dir"
		if ! (cd / && "${pg_as[@]}" "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale --no-sync) \
			>"$LOG_DIR/postgresql-init.log" 2>&1; then
			fail_with_log postgresql-init "initdb failed"
		fi
	fi
	start postgresql "$PG_PORT" -- "${pg_as[@]}" "$bin/postgres" -D "$dir" \
		-c listen_addresses=127.0.0.1 -p "$PG_PORT" -c unix_socket_directories= \
		-c fsync=off -c synchronous_commit=off -c full_page_writes=off
	# SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for clients).
	echo INT >"$PID_DIR/postgresql.stopsig"
}

# ensure_pg_database creates FerretDB's database unless it exists.
ensure_pg_database() {
	local bin
	bin="$(pg_bin_dir)"
	if "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d ferretdb -Atqc 'select 1' >/dev/null 2>&1; then
		return 0
	fi
	"$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres ferretdb >>"$LOG_DIR/postgresql-init.log" 2>&1 ||
		fail_with_log postgresql-init "could not create the ferretdb database"
}

# --- servers -----------------------------------------------------------------

IFS=, read -r -a kafka_ports <<<"$KAFKA_PORTS"
IFS=, read -r -a kafka_cports <<<"$KAFKA_CONTROLLER_PORTS"
if [ "$KAFKA_IMPL" = kafka ]; then
	[ ${#kafka_ports[@]} -ge 1 ] || die "SLUICE_TESTENV_KAFKA_PORTS lists no port"
	[ ${#kafka_cports[@]} -eq ${#kafka_ports[@]} ] ||
		die "SLUICE_TESTENV_KAFKA_CONTROLLER_PORTS needs one port per broker port (${#kafka_ports[@]}), got '$KAFKA_CONTROLLER_PORTS'"
	for i in "${!kafka_ports[@]}"; do
		preflight "kafka-$((i + 1))" "${kafka_ports[$i]}" "${kafka_cports[$i]}"
	done
else
	preflight kfake "${kafka_ports[@]}"
fi
preflight kinesis "$KINESIS_PORT"
preflight mongo "$MONGO_PORT"
if [ "$MONGO_BACKEND" = postgresql ]; then
	preflight postgresql "$PG_PORT"
fi
if [ "$ES_IMPL" = opensearch ]; then
	preflight opensearch "$ES_PORT" "$ES_TRANSPORT_PORT"
else
	preflight zinc "$ES_PORT"
fi
preflight redis "$REDIS_PORT"

# The JVMs start slowest: OpenSearch first, so it boots while Kafka's storage
# is formatted.
if [ "$ES_IMPL" = opensearch ]; then
	start_opensearch
fi
if [ "$KAFKA_IMPL" = kafka ]; then
	start_kafka
else
	start kfake "${kafka_ports[@]}" -- "$(kfake_bin)" \
		-ports "$KAFKA_PORTS" \
		-min-session-timeout "${SLUICE_TESTENV_KAFKA_MIN_SESSION_TIMEOUT:-6s}"
fi

if [ "$MONGO_BACKEND" = postgresql ]; then
	start_postgresql
fi

start kinesis "$KINESIS_PORT" -- env SLUICE_TESTENV_KINESIS_DELAY_MS="${SLUICE_TESTENV_KINESIS_DELAY_MS:-50}" \
	node "$TESTENV_DIR/kinesalite/server.js" "$KINESIS_PORT"

fresh_dir mongo
if [ "$MONGO_BACKEND" = postgresql ]; then
	READY_TIMEOUT="$PG_READY_TIMEOUT" wait_ready postgresql "$(pg_bin_dir)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres
	ensure_pg_database
	mongo_storage=(--handler=postgresql --postgresql-url="postgres://postgres@127.0.0.1:$PG_PORT/ferretdb")
else
	mongo_storage=(--handler=sqlite --sqlite-url="file:$DATA_DIR/mongo/")
fi
start mongo "$MONGO_PORT" -- "$(ferretdb_bin)" \
	"${mongo_storage[@]}" \
	--listen-addr="127.0.0.1:$MONGO_PORT" \
	--debug-addr=- \
	--telemetry=disable \
	--state-dir="$DATA_DIR/mongo" \
	--log-level="${SLUICE_TESTENV_MONGO_LOG_LEVEL:-warn}"

if [ "$ES_IMPL" = zinc ]; then
	fresh_dir zinc
	start zinc "$ES_PORT" -- env \
		ZINC_SERVER_ADDRESS=127.0.0.1 \
		ZINC_SERVER_PORT="$ES_PORT" \
		ZINC_DATA_PATH="$DATA_DIR/zinc" \
		ZINC_FIRST_ADMIN_USER="$ES_USERNAME" \
		ZINC_FIRST_ADMIN_PASSWORD="$ES_PASSWORD" \
		ZINC_PLUGIN_ES_VERSION=8.11.0 \
		ZINC_TELEMETRY=false \
		ZINC_SENTRY=false \
		ZINC_PROFILER=false \
		GIN_MODE=release \
		"$(zinc_bin)"
fi

fresh_dir redis
start redis "$REDIS_PORT" -- redis-server \
	--bind 127.0.0.1 \
	--port "$REDIS_PORT" \
	--save "" \
	--appendonly no \
	--daemonize no \
	--dir "$DATA_DIR/redis" \
	--logfile ""

if [ "$KAFKA_IMPL" = kafka ]; then
	for i in "${!kafka_ports[@]}"; do
		READY_TIMEOUT="$JVM_READY_TIMEOUT" wait_ready "kafka-$((i + 1))" kafka_node_ready "$((i + 1))" "${kafka_ports[$i]}"
	done
else
	wait_ready kfake kafka_ready
fi
wait_ready kinesis kinesis_ready
wait_ready mongo port_open "$MONGO_PORT"
if [ "$ES_IMPL" = opensearch ]; then
	READY_TIMEOUT="$JVM_READY_TIMEOUT" wait_ready opensearch opensearch_ready
	es_url="http://127.0.0.1:$ES_PORT" es_user="" es_pass="" es_flavor=opensearch
else
	wait_ready zinc zinc_ready
	es_url="http://127.0.0.1:$ES_PORT/es" es_user="$ES_USERNAME" es_pass="$ES_PASSWORD" es_flavor=elasticsearch
fi
wait_ready redis redis_ping "$REDIS_PORT"

brokers=""
for p in "${kafka_ports[@]}"; do brokers="${brokers:+$brokers,}127.0.0.1:$p"; done

tmp="$ENV_FILE.tmp"
cat >"$tmp" <<ENV
# Written by internal/testenv/up.sh; load with: . .testenv/env
# Kafka: $KAFKA_IMPL$([ "$KAFKA_IMPL" = kafka ] && echo " $KAFKA_VERSION"); Elasticsearch API: $ES_IMPL$([ "$ES_IMPL" = opensearch ] && echo " $OPENSEARCH_VERSION"); MongoDB: FerretDB $FERRETDB_VERSION on $MONGO_BACKEND
export SLUICE_KAFKA_BROKERS=$brokers
export SLUICE_KAFKA_IMPL=$KAFKA_IMPL
export SLUICE_KINESIS_ENDPOINT=http://127.0.0.1:$KINESIS_PORT
export SLUICE_MONGO_URI=mongodb://127.0.0.1:$MONGO_PORT/
export SLUICE_MONGO_BACKEND=$MONGO_BACKEND
export SLUICE_ES_URL=$es_url
export SLUICE_ES_USERNAME=$es_user
export SLUICE_ES_PASSWORD=$es_pass
export SLUICE_ES_FLAVOR=$es_flavor
export SLUICE_REDIS_ADDR=127.0.0.1:$REDIS_PORT
ENV
mv "$tmp" "$ENV_FILE"

log "all servers answer ($((SECONDS - start_ts))s); addresses in $ENV_FILE:"
grep '^export' "$ENV_FILE" | sed 's/^export /    /' >&2

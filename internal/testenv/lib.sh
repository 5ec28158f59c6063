#!/usr/bin/env bash
# Shared settings and helpers for the sluice local test stack.
# Sourced by build.sh, up.sh and down.sh; not meant to be run directly.
set -euo pipefail

TESTENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTENV_DIR/../.." && pwd)"

# Pinned versions.
FERRETDB_VERSION="v1.24.0"
ZINC_VERSION="v0.4.10"
# Real servers resolved from Maven Central (versions are in kafka/pom.xml and
# opensearch/pom.xml; these name the cache directories and the env file).
KAFKA_VERSION="4.4.0"
OPENSEARCH_VERSION="2.19.6"

# Which server answers for Kafka and for the Elasticsearch API:
# kafka (real Apache Kafka, default) or kfake; opensearch (default) or zinc.
KAFKA_IMPL="${SLUICE_TESTENV_KAFKA:-kafka}"
ES_IMPL="${SLUICE_TESTENV_ES:-opensearch}"
case "$KAFKA_IMPL" in kafka | kfake) ;; *) printf '[testenv] ERROR: SLUICE_TESTENV_KAFKA must be kafka or kfake, not %s\n' "$KAFKA_IMPL" >&2; exit 1 ;; esac
case "$ES_IMPL" in opensearch | zinc) ;; *) printf '[testenv] ERROR: SLUICE_TESTENV_ES must be opensearch or zinc, not %s\n' "$ES_IMPL" >&2; exit 1 ;; esac
# FerretDB's storage: postgresql (default: a private PostgreSQL cluster, about
# 18x faster on the MongoDB sink's upsert benchmark, see README.md) or sqlite.
MONGO_BACKEND="${SLUICE_TESTENV_MONGO_BACKEND:-postgresql}"
case "$MONGO_BACKEND" in postgresql | sqlite) ;; *) printf '[testenv] ERROR: SLUICE_TESTENV_MONGO_BACKEND must be postgresql or sqlite, not %s\n' "$MONGO_BACKEND" >&2; exit 1 ;; esac

# Built binaries are cached outside the repo so a second start is fast.
CACHE_DIR="${SLUICE_TESTENV_CACHE:-$HOME/.cache/sluice-testenv}"
CACHE_BIN="$CACHE_DIR/bin"

# Runtime state (data, logs, pids, env file) lives in the repo, gitignored.
RUN_DIR="${SLUICE_TESTENV_DIR:-$REPO_ROOT/.testenv}"
PID_DIR="$RUN_DIR/pids"
LOG_DIR="$RUN_DIR/logs"
DATA_DIR="$RUN_DIR/data"
ENV_FILE="$RUN_DIR/env"

# Ports (all servers bind 127.0.0.1 only).
# Kafka: one port per broker. Real Kafka runs one combined broker+controller
# node per port (each also listens on its controller port); kfake runs three
# brokers by default.
if [ "$KAFKA_IMPL" = kafka ]; then
	KAFKA_PORTS="${SLUICE_TESTENV_KAFKA_PORTS:-19092}"
else
	KAFKA_PORTS="${SLUICE_TESTENV_KAFKA_PORTS:-19092,19093,19094}"
fi
KAFKA_CONTROLLER_PORTS="${SLUICE_TESTENV_KAFKA_CONTROLLER_PORTS:-}"
if [ -z "$KAFKA_CONTROLLER_PORTS" ]; then # default: each broker port + 100
	for _p in ${KAFKA_PORTS//,/ }; do
		case "$_p" in '' | *[!0-9]*) ;; *) _p=$((_p + 100)) ;; esac
		KAFKA_CONTROLLER_PORTS="${KAFKA_CONTROLLER_PORTS:+$KAFKA_CONTROLLER_PORTS,}$_p"
	done
	unset _p
fi
KINESIS_PORT="${SLUICE_TESTENV_KINESIS_PORT:-14567}"
MONGO_PORT="${SLUICE_TESTENV_MONGO_PORT:-27117}"
# PostgreSQL under FerretDB (only with SLUICE_TESTENV_MONGO_BACKEND=postgresql).
PG_PORT="${SLUICE_TESTENV_PG_PORT:-15432}"
ES_PORT="${SLUICE_TESTENV_ES_PORT:-14080}"
# OpenSearch's node-to-node transport port (nothing but the node uses it).
ES_TRANSPORT_PORT="${SLUICE_TESTENV_ES_TRANSPORT_PORT:-14300}"
REDIS_PORT="${SLUICE_TESTENV_REDIS_PORT:-16379}"
# ZincSearch's first admin user (OpenSearch runs without the security plugin,
# so it has no users).
ES_USERNAME="${SLUICE_TESTENV_ES_USERNAME:-admin}"
ES_PASSWORD="${SLUICE_TESTENV_ES_PASSWORD:-sluice-test-pass}"
# Seconds to wait for each server to answer.
READY_TIMEOUT="${SLUICE_TESTENV_READY_TIMEOUT:-60}"
# PostgreSQL (under FerretDB) on 2 busy cores can take a while to accept.
PG_READY_TIMEOUT="${SLUICE_TESTENV_PG_READY_TIMEOUT:-120}"
# The JVM servers start slower (about 10-30 s on 2 busy cores).
JVM_READY_TIMEOUT="${SLUICE_TESTENV_JVM_READY_TIMEOUT:-180}"
# Heaps of the JVM servers.
KAFKA_HEAP="${SLUICE_TESTENV_KAFKA_HEAP:-512m}"
OPENSEARCH_HEAP="${SLUICE_TESTENV_OPENSEARCH_HEAP:-768m}"

GO="${GO:-go}"
if ! command -v "$GO" >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	GO=/usr/local/go/bin/go
fi

log() { printf '[testenv] %s\n' "$*" >&2; }
die() { printf '[testenv] ERROR: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root (directly, or through sudo when available).
as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root to run: $*"
	fi
}

# sha_of prints a short content hash of the given files.
sha_of() { cat "$@" | sha256sum | cut -c1-16; }

# kafka_cluster_id prints a fresh KRaft cluster id: 16 random bytes in
# URL-safe base64 without padding, redrawn while it starts with '-' (Kafka's
# own Uuid.randomUuid does the same, because a command line reads a leading
# '-' as an option: one fresh clone in 64 failed to format its storage).
kafka_cluster_id() {
	local id
	while :; do
		id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
		[ "${id#-}" = "$id" ] && break
	done
	printf '%s\n' "$id"
}

# format_kafka_storage JARS CLUSTER_ID PROPS LOG4J LOGFILE: formats one KRaft
# node's storage. The id goes as --cluster-id=ID so that even an id that
# starts with '-' is never read as an option.
format_kafka_storage() {
	local jars="$1" id="$2" props="$3" log4j="$4" logfile="$5"
	java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$log4j" -cp "$jars" \
		kafka.tools.StorageTool format --cluster-id="$id" --config="$props" >"$logfile" 2>&1
}

#!/usr/bin/env bash
# Shared settings and helpers for the sluice local test stack.
# Sourced by build.sh, up.sh and down.sh; not meant to be run directly.
set -euo pipefail

TESTENV_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$TESTENV_DIR/../.." && pwd)"

# Pinned versions.
FERRETDB_VERSION="v1.24.0"
ZINC_VERSION="v0.4.10"

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
KAFKA_PORTS="${SLUICE_TESTENV_KAFKA_PORTS:-19092,19093,19094}"
KINESIS_PORT="${SLUICE_TESTENV_KINESIS_PORT:-14567}"
MONGO_PORT="${SLUICE_TESTENV_MONGO_PORT:-27117}"
ES_PORT="${SLUICE_TESTENV_ES_PORT:-14080}"
REDIS_PORT="${SLUICE_TESTENV_REDIS_PORT:-16379}"
ES_USERNAME="${SLUICE_TESTENV_ES_USERNAME:-admin}"
ES_PASSWORD="${SLUICE_TESTENV_ES_PASSWORD:-sluice-test-pass}"
# Seconds to wait for each server to answer.
READY_TIMEOUT="${SLUICE_TESTENV_READY_TIMEOUT:-60}"

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

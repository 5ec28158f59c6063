#!/usr/bin/env bash
# Installs or builds every server of the local test stack, reusing the cache
# when the pinned inputs have not changed. Prints nothing but log lines.
#
# Usage: build.sh [all|kafka|opensearch|kfake|ferretdb|postgresql|zinc|kinesalite|redis]...
# "all" builds what the selected stack needs (SLUICE_TESTENV_KAFKA,
# SLUICE_TESTENV_ES, SLUICE_TESTENV_MONGO_BACKEND): real Kafka and OpenSearch,
# FerretDB on PostgreSQL by default.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$CACHE_BIN"

# copy_module downloads a Go module through the module proxy and copies its
# source to a fresh writable directory, printed on stdout.
copy_module() {
	local mod="$1" version="$2" dest="$3" dir
	dir="$(cd "$REPO_ROOT" && "$GO" mod download -json "$mod@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	[ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $mod@$version gave no source directory"
	rm -rf "$dest"
	mkdir -p "$(dirname "$dest")"
	cp -R "$dir" "$dest"
	chmod -R u+w "$dest"
}

# kfake_bin prints the cache path of the kfake wrapper for the current sources.
kfake_bin() {
	echo "$CACHE_BIN/kfake-$(sha_of "$REPO_ROOT/go.mod" "$REPO_ROOT/go.sum" "$TESTENV_DIR"/cmd/kfake/*.go)"
}

build_kfake() {
	local out
	out="$(kfake_bin)"
	if [ -x "$out" ]; then return; fi
	log "building kfake wrapper -> $out"
	(cd "$REPO_ROOT" && "$GO" build -buildvcs=false -o "$out.tmp" ./internal/testenv/cmd/kfake)
	mv "$out.tmp" "$out"
}

ferretdb_bin() {
	local key="$FERRETDB_VERSION"
	if [ -f "$TESTENV_DIR/ferretdb.patch" ]; then
		key="$key-$(sha_of "$TESTENV_DIR/ferretdb.patch")"
	fi
	echo "$CACHE_BIN/ferretdb-$key"
}

build_ferretdb() {
	local out src
	out="$(ferretdb_bin)"
	if [ -x "$out" ]; then return; fi
	log "building FerretDB $FERRETDB_VERSION (first time only; takes a few minutes)"
	src="$CACHE_DIR/src/ferretdb-$FERRETDB_VERSION"
	copy_module github.com/FerretDB/FerretDB "$FERRETDB_VERSION" "$src"
	# The release build writes this file from git; without it the binary panics.
	printf '%s\n' "$FERRETDB_VERSION" >"$src/build/version/version.txt"
	if [ -f "$TESTENV_DIR/ferretdb.patch" ]; then
		log "applying ferretdb.patch"
		(cd "$src" && git apply --whitespace=nowarn "$TESTENV_DIR/ferretdb.patch")
	fi
	(cd "$src" && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$GO" build -buildvcs=false -trimpath -o "$out.tmp" ./cmd/ferretdb)
	mv "$out.tmp" "$out"
	rm -rf "$src"
}

zinc_bin() { echo "$CACHE_BIN/zincsearch-$ZINC_VERSION"; }

build_zinc() {
	local out src main
	out="$(zinc_bin)"
	if [ -x "$out" ]; then return; fi
	log "building ZincSearch $ZINC_VERSION (first time only; takes a few minutes)"
	src="$CACHE_DIR/src/zincsearch-$ZINC_VERSION"
	copy_module github.com/zincsearch/zincsearch "$ZINC_VERSION" "$src"
	# The web UI is embedded with go:embed; we do not need it, a placeholder will do.
	mkdir -p "$src/web/dist"
	printf '<!doctype html><title>ZincSearch</title><p>UI not built (sluice testenv)</p>\n' >"$src/web/dist/index.html"
	# Drop the pyroscope profiler: that dependency does not build on current Go.
	# Remove its import, the "strings" import only profiling() uses, and
	# replace profiling() with an empty function.
	main="$src/cmd/zincsearch/main.go"
	sed -i -e '/"github.com\/pyroscope-io\/client\/pyroscope"/d' -e '/^[[:space:]]*"strings"$/d' "$main"
	sed -i -e '/^func profiling() {$/,/^}$/c\func profiling() {}' "$main"
	grep -q pyroscope "$main" && die "could not remove pyroscope from $main"
	(cd "$src" && GOTOOLCHAIN=local GOFLAGS=-mod=mod "$GO" build -buildvcs=false -trimpath -o "$out.tmp" ./cmd/zincsearch)
	mv "$out.tmp" "$out"
	rm -rf "$src"
}

# --- JVM servers (Maven Central) ----------------------------------------------

# java_major prints the major version of `java` on PATH (0 when missing).
java_major() {
	local v
	v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^[[:space:]]*java.specification.version = //p')"
	case "$v" in '' | *[!0-9]*) echo 0 ;; *) echo "$v" ;; esac
}

# ensure_jdk makes sure a JDK 17+ (java, javac) and Maven are installed.
ensure_jdk() {
	if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ]; then
		apt_install openjdk-17-jdk-headless
	fi
	[ "$(java_major)" -ge 17 ] || die "Kafka $KAFKA_VERSION and OpenSearch $OPENSEARCH_VERSION need Java 17 or newer; java on PATH is $(java_major)"
	command -v mvn >/dev/null 2>&1 || apt_install maven
	command -v mvn >/dev/null 2>&1 || die "mvn still missing after apt-get install maven"
}

# jvm_dir NAME POM [EXTRA...]: prints the cache directory of a JVM server,
# named by the hash of its pom (and any extra source files).
jvm_dir() {
	local name="$1"
	shift
	echo "$CACHE_DIR/$name-$(sha_of "$@")"
}
kafka_dir() { jvm_dir "kafka-$KAFKA_VERSION" "$TESTENV_DIR/kafka/pom.xml"; }
opensearch_dir() { jvm_dir "opensearch-$OPENSEARCH_VERSION" "$TESTENV_DIR/opensearch/pom.xml" "$TESTENV_DIR/opensearch/TestNode.java"; }

# resolve_jars POM DEST: copies the runtime dependencies of POM into DEST/jars
# with Maven (downloads go to the local Maven repository, ~/.m2 by default).
resolve_jars() {
	local pom="$1" dest="$2" out
	log "resolving $(basename "$(dirname "$pom")") jars from Maven Central (first time only)"
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	if ! out="$(mvn -q -B -f "$pom" dependency:copy-dependencies -DincludeScope=runtime \
		-DoutputDirectory="$dest.tmp/jars" 2>&1)"; then
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /' >&2
		die "Maven could not resolve $pom (above); to use the stand-in instead set SLUICE_TESTENV_KAFKA=kfake or SLUICE_TESTENV_ES=zinc"
	fi
}

build_kafka() {
	local dir
	dir="$(kafka_dir)"
	if [ -f "$dir/.done" ]; then return; fi
	ensure_jdk
	resolve_jars "$TESTENV_DIR/kafka/pom.xml" "$dir"
	[ -f "$dir.tmp/jars/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven gave no kafka_2.13-$KAFKA_VERSION.jar"
	touch "$dir.tmp/.done"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

build_opensearch() {
	local dir
	dir="$(opensearch_dir)"
	if [ -f "$dir/.done" ]; then return; fi
	ensure_jdk
	resolve_jars "$TESTENV_DIR/opensearch/pom.xml" "$dir"
	[ -f "$dir.tmp/jars/opensearch-$OPENSEARCH_VERSION.jar" ] || die "Maven gave no opensearch-$OPENSEARCH_VERSION.jar"
	log "compiling opensearch/TestNode.java"
	javac -nowarn -d "$dir.tmp/classes" -cp "$dir.tmp/jars/*" "$TESTENV_DIR/opensearch/TestNode.java"
	touch "$dir.tmp/.done"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

build_kinesalite() {
	local dir="$TESTENV_DIR/kinesalite" stamp
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		apt_install nodejs npm
	fi
	stamp="$dir/node_modules/.sluice-lock-$(sha_of "$dir/package-lock.json")"
	if [ -f "$stamp" ]; then return; fi
	log "installing kinesalite with npm ci"
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	touch "$stamp"
}

# apt_install PKG...: installs Debian packages (used only when a tool is missing).
apt_install() {
	command -v apt-get >/dev/null 2>&1 || die "$* missing and apt-get is not available; install them by hand"
	log "installing $* with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq >&2 || true
	as_root apt-get install -y -qq "$@" >&2
}

# pg_bin_dir prints the directory holding PostgreSQL's server programs
# (initdb, postgres, pg_isready); Debian keeps them off PATH in
# /usr/lib/postgresql/<major>/bin. Prints nothing when none is installed.
pg_bin_dir() {
	local d
	d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
	if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
		echo "$d"
	elif command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1; then
		dirname "$(readlink -f "$(command -v postgres)")"
	fi
}

# build_postgresql installs the Debian postgresql package when no server is
# installed (the FerretDB backend with SLUICE_TESTENV_MONGO_BACKEND=postgresql).
# As root it also needs setpriv and the package's postgres user: PostgreSQL
# refuses to run as root, so up.sh runs it as that user.
build_postgresql() {
	if [ -z "$(pg_bin_dir)" ]; then
		apt_install postgresql
		[ -n "$(pg_bin_dir)" ] || die "initdb/postgres still missing after apt-get install postgresql"
	fi
	if [ "$(id -u)" = 0 ]; then
		command -v setpriv >/dev/null 2>&1 || apt_install util-linux
		id postgres >/dev/null 2>&1 || die "running as root, PostgreSQL needs a non-root user 'postgres' (the Debian package creates it); or set SLUICE_TESTENV_MONGO_BACKEND=sqlite"
	fi
}

build_redis() {
	if command -v redis-server >/dev/null 2>&1; then return; fi
	apt_install redis-server
	command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after apt-get install"
}

main() {
	local what=("$@")
	[ ${#what[@]} -gt 0 ] || what=(all)
	for w in "${what[@]}"; do
		case "$w" in
		all)
			build_redis
			build_kinesalite
			build_ferretdb
			if [ "$MONGO_BACKEND" = postgresql ]; then build_postgresql; fi
			if [ "$KAFKA_IMPL" = kafka ]; then build_kafka; else build_kfake; fi
			if [ "$ES_IMPL" = opensearch ]; then build_opensearch; else build_zinc; fi
			;;
		kafka | opensearch | kfake | ferretdb | postgresql | zinc | kinesalite | redis) "build_$w" ;;
		*) die "unknown component: $w" ;;
		esac
	done
}

# When sourced by up.sh only the *_bin helpers are wanted.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi

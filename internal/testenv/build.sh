#!/usr/bin/env bash
# Installs or builds every server of the local test stack, reusing the cache
# when the pinned inputs have not changed. Prints nothing but log lines.
#
# Usage: build.sh [all|kfake|ferretdb|zinc|kinesalite|redis]...
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
		all) build_redis; build_kinesalite; build_kfake; build_ferretdb; build_zinc ;;
		kfake | ferretdb | zinc | kinesalite | redis) "build_$w" ;;
		*) die "unknown component: $w" ;;
		esac
	done
}

# When sourced by up.sh only the *_bin helpers are wanted.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	main "$@"
fi

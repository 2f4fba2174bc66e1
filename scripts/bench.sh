#!/usr/bin/env bash
# Benchmarks Latch end to end and writes docs/performance.md.
#
# Builds latch and latch-bench, starts a throwaway PostgreSQL 15 (fsync on)
# and a throwaway Latch per backend, all on loopback, runs every scenario at
# each concurrency, and stops everything it started when it exits.
#
#   scripts/bench.sh                     # defaults below
#   DURATION=25s CONCURRENCY="8 32" BACKENDS="postgres" scripts/bench.sh
#   PROFILE_DIR=/tmp/prof scripts/bench.sh   # also CPU profiles at c=8
#
# Variables: DURATION (10s per run), WARMUP (2s), CONCURRENCY ("8 32"),
# RUNS (1; with more, each row is the median of the runs), BACKENDS
# ("sqlite postgres"), SCENARIOS (all), OUT (docs/performance.md),
# PROFILE_DIR (unset: no profiles), BENCH_LATCH_BIN (a prebuilt latch to measure
# instead of this tree's, e.g. an older commit for comparison).
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONCURRENCY=${CONCURRENCY:-"8 32"}
RUNS=${RUNS:-1}
BACKENDS=${BACKENDS:-"sqlite postgres"}
SCENARIOS=${SCENARIOS:-"flow refresh refresh-no-id client-credentials introspect userinfo mixed"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$ROOT/docs/performance.md}
PROFILE_DIR=${PROFILE_DIR:-}

WORK=$(mktemp -d /tmp/latch-bench.XXXXXX)
chmod 755 "$WORK"
LATCH_PID=""
PGDATA=""

as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
	set +e
	if [ -n "$LATCH_PID" ]; then kill "$LATCH_PID" 2>/dev/null; wait "$LATCH_PID" 2>/dev/null; fi
	if [ -n "$PGDATA" ] && [ -f "$PGDATA/postmaster.pid" ]; then
		as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null 2>&1
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

echo "== building" >&2
(cd "$ROOT" && go build -o "$WORK/latch-bench" ./cmd/latch-bench)
if [ -n "${BENCH_LATCH_BIN:-}" ]; then cp "$BENCH_LATCH_BIN" "$WORK/latch"; else (cd "$ROOT" && go build -o "$WORK/latch" .); fi
BENCH="$WORK/latch-bench"

export LATCH_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export LATCH_API_KEY="latch_bench_$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
export LATCH_LOG_LEVEL=warn
# Never contacted: the load tool plays the host app through the API.
export LATCH_APPROVAL_URL=http://127.0.0.1:9/approve
RESULTS="$WORK/results.jsonl"
READY="$WORK/ready.txt"
: >"$RESULTS"
: >"$READY"

start_postgres() {
	PGDATA="$WORK/pg"
	mkdir -p "$PGDATA"
	chown postgres "$PGDATA" 2>/dev/null || true
	PGPORT=$(free_port)
	as_postgres initdb -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
	as_postgres pg_ctl -D "$PGDATA" -l "$PGDATA/log" -w \
		-o "-p $PGPORT -k $PGDATA -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" start >/dev/null
	as_postgres psql -q -h 127.0.0.1 -p "$PGPORT" -U postgres -c "CREATE DATABASE latch" >/dev/null
	PG_PID=$(head -1 "$PGDATA/postmaster.pid")
}

# start_latch PORT DSN [NAME=value ...]: starts Latch (LATCH_PID), waits
# until it is ready and leaves the milliseconds that took in READY_MS.
start_latch() {
	local port=$1 dsn=$2 extra=${3:-}
	local t0
	t0=$(date +%s%N)
	# shellcheck disable=SC2086 # $extra is a list of NAME=value words
	env LATCH_DATABASE_DSN="$dsn" LATCH_HTTP_ADDR="127.0.0.1:$port" LATCH_ISSUER="http://127.0.0.1:$port" $extra \
		"$WORK/latch" serve --migrate >>"$WORK/latch.log" 2>&1 &
	LATCH_PID=$!
	READY_MS=$("$BENCH" -wait-ready -url "http://127.0.0.1:$port" -since "$t0")
}

stop_latch() {
	kill "$LATCH_PID"
	wait "$LATCH_PID" 2>/dev/null || true
	LATCH_PID=""
}

for backend in $BACKENDS; do
	port=$(free_port)
	case $backend in
	sqlite) dsn="sqlite://$WORK/sqlite/latch.db"; mkdir -p "$WORK/sqlite"; dbpid=0 ;;
	postgres) start_postgres; dsn="postgres://postgres@127.0.0.1:$PGPORT/latch?sslmode=disable"; dbpid=$PG_PID ;;
	*) echo "unknown backend $backend" >&2; exit 2 ;;
	esac
	# Start to ready: the first start (creates schema and keys), then three
	# restarts on the existing database.
	start_latch "$port" "$dsn"; first=$READY_MS; stop_latch
	restarts=()
	for _ in 1 2 3; do start_latch "$port" "$dsn"; restarts+=("$READY_MS"); stop_latch; done
	echo "$backend first=$first restarts=${restarts[*]}" >>"$READY"

	pprof_env=""
	if [ -n "$PROFILE_DIR" ]; then
		mkdir -p "$PROFILE_DIR"
		pprof_port=$(free_port)
		pprof_env="LATCH_PPROF_ENABLED=true LATCH_PPROF_ADDR=127.0.0.1:$pprof_port"
	fi
	start_latch "$port" "$dsn" "$pprof_env"
	# Runs outermost: noise from whatever else the machine does spreads over
	# every scenario instead of landing on one.
	for run in $(seq "$RUNS"); do
	for c in $CONCURRENCY; do
		for s in $SCENARIOS; do
			args=(-scenario "$s")
			[ "$s" = refresh-no-id ] && args=(-scenario refresh -id-token=false)
			echo "== $backend run $run c=$c $s" >&2
			prof_pid=""
			if [ -n "$PROFILE_DIR" ] && [ "$c" = 8 ] && [ "$run" = 1 ]; then
				secs=$(( ${DURATION%s} > 2 ? ${DURATION%s} - 1 : 1 ))
				(sleep "${WARMUP%s}"; curl -s -o "$PROFILE_DIR/$backend-$s.pprof" \
					"http://127.0.0.1:$pprof_port/debug/pprof/profile?seconds=$secs") &
				prof_pid=$!
			fi
			"$BENCH" -url "http://127.0.0.1:$port" -dsn "$dsn" "${args[@]}" -concurrency "$c" \
				-duration "$DURATION" -warmup "$WARMUP" -server-pid "$LATCH_PID" -db-pid "$dbpid" \
				-label "$backend" -json | tee -a "$RESULTS" >/dev/null
			if [ -n "$prof_pid" ]; then wait "$prof_pid"; fi
		done
	done
	done
	stop_latch
	if [ "$backend" = postgres ]; then
		as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
		PGDATA=""
	fi
done

cpu_model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
pg_version=$(postgres --version 2>/dev/null || echo "not run")
commit=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(cd "$ROOT" && git status --porcelain 2>/dev/null | grep -q . && echo " (uncommitted changes)" || true)
{
	echo "# Performance"
	echo
	echo "Generated by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d) — do not edit the measured"
	echo "sections by hand; rerun the script. The analysis at the end is kept in"
	echo "\`docs/performance-analysis.md\` and copied in."
	echo
	echo "## Machine and versions"
	echo
	echo "- CPU: $cpu_model, $(nproc) cores; memory $mem; $(uname -sr)"
	echo "- Load average when the run ended: $(cut -d' ' -f1-3 /proc/loadavg) (the load tool, Latch and PostgreSQL share these cores)"
	echo "- Latch commit $commit$dirty, $(go version | cut -d' ' -f3-4)"
	echo "- $pg_version, fsync on, on the same machine, loopback TCP"
	echo "- SQLite: modernc (pure Go) via glebarez/sqlite, WAL, synchronous=NORMAL"
	echo "- Settings: Latch defaults (ES256, JWT access tokens, HMAC client secrets, client cache 2 s)"
	echo
	echo "## Results"
	echo
	echo "Each run: $WARMUP warm-up, then $DURATION measured; each row is the median of $RUNS run(s)"
	echo "(errors: the sum). ops/s counts successful operations;"
	echo "a \`flow\` is one whole sign-in (authorize → approval API → browser resume →"
	echo "code exchange, openid + offline_access, a new cookie jar each time). CPU is in"
	echo "cores (CPU seconds per second) over the measured window; RSS is the largest"
	echo "sample. \`mixed\` is 5% flow, 20% refresh, 25% client_credentials, 35%"
	echo "introspection, 15% userinfo."
	echo
	"$BENCH" -report "$RESULTS"
	echo
	echo "## Start to ready"
	echo
	echo "Milliseconds from launching \`latch serve\` to the first 200 from \`/health/ready\`:"
	echo
	while read -r line; do echo "- $line"; done <"$READY"
	echo
	echo "## Reproduce"
	echo
	echo '```sh'
	echo "DURATION=$DURATION WARMUP=$WARMUP RUNS=$RUNS CONCURRENCY=\"$CONCURRENCY\" BACKENDS=\"$BACKENDS\" scripts/bench.sh"
	echo "# one scenario against a running server:"
	echo "go run ./cmd/latch-bench -url http://127.0.0.1:8080 -dsn \"\$LATCH_DATABASE_DSN\" \\"
	echo "    -scenario refresh -concurrency 8 -duration 10s -server-pid \$(pgrep -n latch)"
	echo '```'
	if [ -f "$ROOT/docs/performance-analysis.md" ]; then
		echo
		cat "$ROOT/docs/performance-analysis.md"
	fi
} >"$OUT"
echo "wrote $OUT" >&2

#!/usr/bin/env bash
# bench-compare: goscache against Postfix's own scache(8) and the floor, in
# one run, and docs/BENCHMARKS.md from the results.
#
# It starts a private Postfix instance (config, queue and data directories
# under a temporary directory; the default instance in /etc/postfix is not
# touched) whose master(8) runs three services side by side: the stock
# scache, goscache, and the floor (scachebench -floor-master: the same
# reads, writes, sendmsg/recvmsg and master status records, no cache), on
# private/scache, private/goscache and private/floor. Then:
#   1. the sweep: 1,4,16,64 clients x the three servers, ROUNDS rounds,
#      interleaved (scachebench -target ... -rounds), fresh labels;
#   1b. the same in reuse mode (-labels reuse), REUSE_CLIENTS clients;
#   1c. the open loop, reuse mode: OPEN_CLIENTS clients offered a fixed
#       schedule of cycles (-rate) at three load points, each its own
#       results file: one rate for every server, FIXED_FRACTION of the
#       lower of scache's and goscache's median capacity at that client
#       count in 1b (open-reuse-fixed.json), and OWN_FRACTIONS (50%, 80%)
#       of each server's own median capacity in 1b (open-reuse-own50.json,
#       open-reuse-own80.json), so that each server is compared at the same
#       share of what it can do;
#   1d. the same three points with fresh labels, capacities from the
#       sweep (1): open-fresh-*.json;
#       every run records each server's CPU time per cycle (-pid);
#   2. the scale run: 10, 1k, 10k, 100k connections cached in scache and
#      goscache, one client measured at each level, VmRSS sampled;
#   3. the Go heap per cached connection of goscache's Server in-process;
#   4. cmd/benchplot writes docs/BENCHMARKS.md and docs/bench/throughput.svg
#      from the JSON kept in docs/bench/, appending docs/bench/notes.md (the
#      hand-written analysis) when it exists.
#
# Needs root (master(8) refuses to run otherwise) and Postfix (Debian's
# postfix package is installed when missing). Environment knobs:
#   ROUNDS (5), DURATION (3s), WARMUP (1s), CLIENTS (1,4,16,64),
#   REUSE_CLIENTS (1,16), OPEN_CLIENTS (16), OWN_FRACTIONS (50,80: percent),
#   FIXED_FRACTION (0.25),
#   SCALE (10,1000,10000,100000), SCALE_ROUNDS (3), SCALE_DURATION (2s),
#   RESULTS (docs/bench), OUT (docs/BENCHMARKS.md), KEEP=1 keeps the temp dir,
#   HOLD=1 starts the instance and waits (no benchmark), PROFILE=1 (below).
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
export LANG=C LC_ALL=C

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-3s}
WARMUP=${WARMUP:-1s}
CLIENTS=${CLIENTS:-1,4,16,64}
REUSE_CLIENTS=${REUSE_CLIENTS:-1,16}
OPEN_CLIENTS=${OPEN_CLIENTS:-16}
OWN_FRACTIONS=${OWN_FRACTIONS:-50,80}
FIXED_FRACTION=${FIXED_FRACTION:-0.25}
SCALE=${SCALE:-10,1000,10000,100000}
SCALE_ROUNDS=${SCALE_ROUNDS:-3}
SCALE_DURATION=${SCALE_DURATION:-2s}
RESULTS=${RESULTS:-docs/bench}
OUT=${OUT:-docs/BENCHMARKS.md}
GO=${GO:-go}
# The commit measured, taken before this script writes its outputs (which
# are not "local changes" of the code under test).
# RESULTS and OUT are left out of the check when they are in the
# repository (a pathspec outside it would make git fail, which read as
# local changes).
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
excludes=()
for p in "$RESULTS" "$OUT"; do
	case $(realpath -m "$p") in
	"$ROOT"/*) excludes+=(":(exclude)$(realpath -m --relative-to="$ROOT" "$p")") ;;
	esac
done
git -C "$ROOT" diff --quiet HEAD -- . "${excludes[@]}" 2>/dev/null ||
	commit="$commit (with local changes)"

log() { printf 'bench-compare: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root: master(8) refuses to start otherwise"
if ! command -v postconf >/dev/null 2>&1; then
	log "Postfix is missing: installing Debian's postfix package"
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >/dev/null
fi
DAEMON_DIR=$(postconf -d -h daemon_directory)
[ -x "$DAEMON_DIR/master" ] && [ -x "$DAEMON_DIR/scache" ] || die "no master or scache in $DAEMON_DIR"
id postfix >/dev/null 2>&1 || die "no postfix user"

# Descriptors: the scale run caches up to max(SCALE) connections in each
# server, which inherits master's limit. Raise the hard limit if we may;
# otherwise shrink the top level to what fits.
top=0
for n in ${SCALE//,/ }; do [ "$n" -gt "$top" ] && top=$n; done
want=$((top + 4096))
ulimit -Hn "$want" 2>/dev/null || true
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=$want
ulimit -n "$hard"
fit=$(( (hard - 4096) / 1000 * 1000 ))
if [ "$top" -gt "$fit" ]; then
	log "RLIMIT_NOFILE hard limit is $hard (raising it needs CAP_SYS_RESOURCE): scale levels capped at $fit"
	levels=""
	for n in ${SCALE//,/ }; do
		[ "$n" -lt "$fit" ] && levels="$levels,$n"
	done
	SCALE="${levels#,},$fit"
fi
export BENCH_FD_LIMIT="$hard (scale levels: $SCALE)"

TMP=$(mktemp -d /tmp/goscache-bench.XXXXXX)
chmod 755 "$TMP"
MASTER_PID=""
cleanup() {
	set +e
	[ -n "${LOAD_PID:-}" ] && kill "$LOAD_PID" 2>/dev/null
	if [ -n "$MASTER_PID" ]; then
		kill "$MASTER_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$MASTER_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -z "${KEEP:-}" ]; then rm -rf "$TMP"; else log "kept $TMP"; fi
}
trap cleanup EXIT

# The machine may be shared: sample the load average all along, and report
# it with the results (machine.json).
( while sleep 5; do cut -d' ' -f1 /proc/loadavg; done >"$TMP/load.log" ) &
LOAD_PID=$!
load_summary() {
	sort -n "$TMP/load.log" | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit
		printf "1-minute load average during the run: min %s, median %s, max %s (%d samples, 5 s apart)", v[1], v[int((NR + 1) / 2)], v[NR], NR }'
}

log "building into $TMP/bin"
$GO build -o "$TMP/bin/" ./cmd/goscache ./cmd/scachebench ./cmd/benchplot
BIN=$TMP/bin

# The private instance. daemon_directory is our own directory of links, so
# that goscache need not be installed into Postfix's.
mkdir -p "$TMP/etc" "$TMP/queue/pid" "$TMP/queue/private" "$TMP/queue/public" "$TMP/data" "$TMP/libexec"
chown postfix "$TMP/queue/private" "$TMP/data"
chmod 700 "$TMP/queue/private"
chown postfix:postdrop "$TMP/queue/public"
chmod 710 "$TMP/queue/public"
ln -s "$DAEMON_DIR/scache" "$TMP/libexec/scache"
ln -s "$DAEMON_DIR/postlogd" "$TMP/libexec/postlogd"
install -m 0755 "$BIN/goscache" "$TMP/libexec/goscache"
install -m 0755 "$BIN/scachebench" "$TMP/libexec/scachebench"
# The floor starts as every master(8) child does (mastercompat.Start):
# the wrapper passes master's command line through, argv[0] included.
printf '#!/bin/sh\nexec %s -floor-master "$0" "$@"\n' "$TMP/libexec/scachebench" >"$TMP/libexec/floor"
chmod 755 "$TMP/libexec/floor"
cat >"$TMP/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $TMP/queue
data_directory = $TMP/data
daemon_directory = $TMP/libexec
mail_owner = postfix
setgid_group = postdrop
myhostname = bench.example
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
max_idle = 3600s
connection_cache_ttl_limit = 3600s
maillog_file = $TMP/maillog
maillog_file_prefixes = $TMP
EOF
cat >"$TMP/etc/master.cf" <<EOF
# service type  private unpriv chroot wakeup maxproc command
scache    unix  -       -       n       -       1       scache
goscache  unix  -       -       n       -       1       goscache
floor     unix  -       -       n       -       1       floor
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
POSTFIX_VERSION=$(postconf -c "$TMP/etc" -h mail_version)

log "starting master(8) -c $TMP/etc (Postfix $POSTFIX_VERSION, RLIMIT_NOFILE $hard)"
# master -d stays in this script's session, and so in the scheduler's
# autogroup of scachebench: under a real master(8), which calls setsid(),
# smtp(8) and the cache share master's session, so client and server
# compete as tasks of one group. A master in a session of its own (setsid
# here, as before 2026-12-07) made each server's process a separate
# autogroup whose share of the CPU is fair against the whole client
# group's: at the open loop's 50% point it put goscache's and the
# floor's find_dest p99 several times above their values standalone
# (docs/bench/notes.md, "Scheduler groups").
"$DAEMON_DIR/master" -c "$TMP/etc" -d </dev/null >"$TMP/master.out" 2>&1 &
MASTER_PID=$!
SCACHE=$TMP/queue/private/scache GOSCACHE=$TMP/queue/private/goscache FLOOR=$TMP/queue/private/floor
for _ in $(seq 100); do
	[ -S "$SCACHE" ] && [ -S "$GOSCACHE" ] && [ -S "$FLOOR" ] && break
	kill -0 "$MASTER_PID" 2>/dev/null || { cat "$TMP/master.out" >&2; die "master exited"; }
	sleep 0.1
done
[ -S "$SCACHE" ] && [ -S "$GOSCACHE" ] && [ -S "$FLOOR" ] || die "sockets did not appear"

# A first request makes master spawn each service; then find their pids.
child() { ps -o pid=,comm= --ppid "$MASTER_PID" | awk -v c="$1" '$2 == c { print $1 }'; }
spawn() {
	"$BIN/scachebench" -target scache="$SCACHE" -target goscache="$GOSCACHE" -target floor="$FLOOR" \
		-clients 1 -cycles 5 -warmup 0 >/dev/null ||
		{ cat "$TMP/maillog" >&2 2>/dev/null; die "a server does not answer"; }
	# The floor's wrapper script execs scachebench.
	SCACHE_PID=$(child scache) GOSCACHE_PID=$(child goscache) FLOOR_PID=$(child scachebench)
	[ -n "$SCACHE_PID" ] && [ -n "$GOSCACHE_PID" ] && [ -n "$FLOOR_PID" ] ||
		die "cannot find the scache, goscache and floor processes under master $MASTER_PID"
	log "scache pid $SCACHE_PID, goscache pid $GOSCACHE_PID, floor pid $FLOOR_PID"
	# Same scheduler group as the client (see master's start above).
	if [ -r /proc/self/autogroup ]; then
		for p in "$SCACHE_PID" "$GOSCACHE_PID" "$FLOOR_PID"; do
			[ "$(cut -d' ' -f1 "/proc/$p/autogroup")" = "$(cut -d' ' -f1 /proc/self/autogroup)" ] ||
				die "server $p is not in the client's scheduler autogroup"
		done
	fi
}
spawn

# HOLD=1: no benchmark; the instance stays up for experiments by hand.
# $TMP/targets holds the scachebench flags that name the three servers
# and their pids; the script waits until it is killed (Ctrl-C or SIGTERM),
# then stops master as always.
if [ -n "${HOLD:-}" ]; then
	echo -target scache="$SCACHE" -target goscache="$GOSCACHE" -target floor="$FLOOR" \
		-pid scache="$SCACHE_PID" -pid goscache="$GOSCACHE_PID" -pid floor="$FLOOR_PID" >"$TMP/targets"
	log "holding: scachebench flags in $TMP/targets, binaries in $BIN; kill $$ to stop"
	trap 'exit 0' TERM INT
	while :; do sleep 1; done
fi

# PROFILE=1: instead of the benchmark, where goscache's and the floor's CPU
# goes in reuse mode (PROFILE_CLIENTS, default 1 and 16 clients): perf
# samples each process under master for 6 s of a 9 s run, and
# docs/bench/issue18/perf-classify.py sorts the samples per cycle into
# the scheduler, the request path's system calls and user-space work
# (cpu-clock: a VM without hardware counters has nothing else). The
# classified profiles go to $RESULTS/profile/ with each run's output.
if [ -n "${PROFILE:-}" ]; then
	command -v perf >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >/dev/null
	out=$RESULTS/profile
	mkdir -p "$out"
	for c in ${PROFILE_CLIENTS:-1 16}; do
		for t in goscache floor; do
			case $t in
			goscache) sock=$GOSCACHE pid=$GOSCACHE_PID ;;
			floor) sock=$FLOOR pid=$FLOOR_PID ;;
			esac
			"$BIN/scachebench" -target "$t=$sock" -pid "$t=$pid" -labels reuse -clients "$c" \
				-rounds 1 -duration 9s -warmup 1s >"$out/run-$t-$c.txt" &
			bench=$!
			sleep 2
			perf record -q -e cpu-clock -F 10000 -g -p "$pid" -o "$TMP/$t-$c.data" -- sleep 6 2>/dev/null
			wait "$bench"
			# The table's second line, column 4: cycles/s over the run.
			rate=$(awk 'NR == 2 { print $4 }' "$out/run-$t-$c.txt")
			{
				echo "$t, $c clients, reuse ($rate cycles/s x 6 s; $(cut -d' ' -f1-3 /proc/loadavg) load)"
				python3 docs/bench/issue18/perf-classify.py "$TMP/$t-$c.data" "$(awk -v r="$rate" 'BEGIN { print r * 6 }')"
			} >"$out/classified-$t-$c.txt"
			log "profile: $out/classified-$t-$c.txt"
			head -6 "$out/classified-$t-$c.txt" >&2
		done
	done
	exit 0
fi

mkdir -p "$RESULTS"
rm -f "$RESULTS/machine.json"
all_targets() {
	echo -target scache="$SCACHE" -target goscache="$GOSCACHE" -target floor="$FLOOR" \
		-pid scache="$SCACHE_PID" -pid goscache="$GOSCACHE_PID" -pid floor="$FLOOR_PID"
}
log "sweep: clients $CLIENTS, $ROUNDS rounds of $DURATION"
"$BIN/scachebench" -timeout 30s -json $(all_targets) \
	-clients "$CLIENTS" -rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" >"$RESULTS/sweep.json"
log "reuse mode: clients $REUSE_CLIENTS, $ROUNDS rounds of $DURATION"
"$BIN/scachebench" -timeout 30s -json $(all_targets) -labels reuse \
	-clients "$REUSE_CLIENTS" -rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" >"$RESULTS/reuse.json"
# open_loop MODE CAPACITY_FILE: the open-loop points of label mode MODE,
# capacities from CAPACITY_FILE (a closed-loop run of the same mode).
open_loop() {
	local mode=$1 capfile=$2 rate pct
	rm -f "$RESULTS"/open-"$mode"-*.json
	if ! rate=$("$BIN/benchplot" -capacity "$capfile" -of scache,goscache -clients "$OPEN_CLIENTS" -fraction "$FIXED_FRACTION"); then
		log "open loop, $mode: skipped (no closed-loop run at $OPEN_CLIENTS clients)"
		return
	fi
	log "open loop, $mode labels: $OPEN_CLIENTS clients offered $rate cycles/s each server, $ROUNDS rounds of $DURATION (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	"$BIN/scachebench" -timeout 30s -json $(all_targets) -labels "$mode" -rate "$rate" \
		-clients "$OPEN_CLIENTS" -rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" >"$RESULTS/open-$mode-fixed.json"
	for pct in ${OWN_FRACTIONS//,/ }; do
		rate=$("$BIN/benchplot" -capacity "$capfile" -of scache,goscache,floor -each -clients "$OPEN_CLIENTS" -fraction "$(awk -v p="$pct" 'BEGIN { print p / 100 }')")
		log "open loop, $mode labels: $OPEN_CLIENTS clients offered $pct% of each server's own capacity ($rate), $ROUNDS rounds of $DURATION (load: $(cut -d' ' -f1-3 /proc/loadavg))"
		"$BIN/scachebench" -timeout 30s -json $(all_targets) -labels "$mode" -rate "$rate" \
			-clients "$OPEN_CLIENTS" -rounds "$ROUNDS" -duration "$DURATION" -warmup "$WARMUP" >"$RESULTS/open-$mode-own$pct.json"
	done
}
rm -f "$RESULTS/open.json" "$RESULTS/open-fresh.json" # the one-point open loop of issue 14
open_loop reuse "$RESULTS/reuse.json"
open_loop fresh "$RESULTS/sweep.json"
# Fresh server processes for the scale run, so that resident memory is
# measured from an empty cache: on SIGHUP master closes its children's
# status channels, they exit, and the next connection starts new ones.
kill -HUP "$MASTER_PID"
for _ in $(seq 100); do
	kill -0 "$SCACHE_PID" 2>/dev/null || kill -0 "$GOSCACHE_PID" 2>/dev/null || break
	sleep 0.1
done
spawn
log "scale: $SCALE cached"
"$BIN/scachebench" -timeout 60s -json -target scache="$SCACHE" -target goscache="$GOSCACHE" \
	-pid scache="$SCACHE_PID" -pid goscache="$GOSCACHE_PID" -clients "" -scale "$SCALE" \
	-rounds "$SCALE_ROUNDS" -duration "$SCALE_DURATION" -warmup "$WARMUP" >"$RESULTS/scale.json"
for p in "$SCACHE_PID" "$GOSCACHE_PID"; do
	kill -0 "$p" 2>/dev/null || die "server $p died during the run"
done
log "Go heap per cached connection (in-process)"
heap_levels=1000
[ "${SCALE##*,}" -gt 1000 ] && heap_levels="1000,${SCALE##*,}"
"$BIN/scachebench" -json -clients "" -heap "$heap_levels" >"$RESULTS/heap.json"

export BENCH_LOAD
BENCH_LOAD="$(load_summary) on $(nproc) cores"
log "$BENCH_LOAD"
notes=()
[ -f "$RESULTS/notes.md" ] && notes=(-notes "$RESULTS/notes.md")
"$BIN/benchplot" -dir "$RESULTS" -out "$OUT" -svg "$RESULTS/throughput.svg" \
	-postfix "$POSTFIX_VERSION (Debian package)" -commit "$commit" "${notes[@]}"
log "wrote $OUT"

#!/bin/sh
# fuzz-long.sh: fuzz targets of the module, one at a time, for FUZZEXECS
# executions each (default 10 million), niced; `make fuzz-long`.
#
#   scripts/fuzz-long.sh                 every target (go test -list '^Fuzz' ./...)
#   scripts/fuzz-long.sh FuzzServer ...  the targets named, in that order
#
# Knobs (environment): FUZZEXECS (executions per target), FUZZNICE (nice
# level, default 10), FUZZOUT (results directory, default bin/fuzz-long).
# Per target, $FUZZOUT/<package>.<target>.log holds go test's output, and
# one row is added to $FUZZOUT/results.md: package, target, executions,
# wall time, new interesting inputs (Go keeps them in its cache,
# $(go env GOCACHE)/fuzz; "corpus" is the total with the seeds), and
# findings. A failing input is written by Go under the package's
# testdata/fuzz/<target>/ and is from then on a regression test that every
# `go test` runs: commit it with the fix. The exit status is 1 when a target
# failed or found something.
set -u
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
execs=${FUZZEXECS:-10000000}
nicelevel=${FUZZNICE:-10}
out=${FUZZOUT:-bin/fuzz-long}
mkdir -p "$out"
results=$out/results.md
[ -s "$results" ] || {
	echo "| package | target | executions | wall time | new interesting | findings |"
	echo "|---|---|---|---|---|---|"
} >"$results"

# Every target as "package target", in go list order.
all=$(for pkg in $($GO list ./...); do
	for t in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "$pkg $t"
	done
done)
if [ $# -gt 0 ]; then
	todo=$(for t in "$@"; do
		echo "$all" | awk -v t="$t" '$2 == t' | grep . || {
			echo "fuzz-long: no fuzz target $t" >&2
			exit 1
		}
	done) || exit 1
else
	todo=$all
fi

echo "$todo" | while read -r pkg t; do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	short=${pkg#github.com/goscache/goscache/}
	log=$out/$(echo "$short" | tr / _).$t.log
	before=$(ls "$dir/testdata/fuzz/$t" 2>/dev/null | wc -l)
	echo "== $short $t: $execs executions ($(date -u +%H:%M:%S))"
	start=$(date +%s)
	if nice -n "$nicelevel" $GO test -run '^$' -fuzz "^$t\$" -fuzztime "${execs}x" "$pkg" >"$log" 2>&1 </dev/null; then
		status=none
	else
		status="FAILED (see $log)"
	fi
	secs=$(($(date +%s) - start))
	after=$(ls "$dir/testdata/fuzz/$t" 2>/dev/null | wc -l)
	if [ "$after" -gt "$before" ]; then
		status="$((after - before)) input(s) in $short/testdata/fuzz/$t"
	fi
	# The last progress line: "fuzz: elapsed: 5m0s, execs: 10000000
	# (33333/sec), new interesting: 12 (total: 140)".
	last=$(grep '^fuzz: elapsed:' "$log" | tail -1)
	n=$(echo "$last" | sed -n 's/.*execs: \([0-9]*\).*/\1/p')
	interesting=$(echo "$last" | sed -n 's/.*new interesting: \([0-9]*\) (total: \([0-9]*\)).*/\1 (corpus \2)/p')
	echo "| $short | $t | ${n:-?} | ${secs}s | ${interesting:-?} | $status |" >>"$results"
	tail -1 "$results"
	[ "$status" = none ] || echo "$t" >>"$out/.failed"
done
if [ -s "$out/.failed" ]; then
	echo "fuzz-long: failed or found something: $(cat "$out/.failed" | tr '\n' ' ')" >&2
	rm -f "$out/.failed"
	exit 1
fi
exit 0

#!/bin/sh
# run.sh: what a compat image runs (compat-tests/Dockerfile): every test that
# compares goscache with this image's Postfix, then a summary for
# docs/compat-matrix.md. Results go to $COMPAT_OUT (docker.sh mounts it):
#   summary           key=value lines: suite, debian, postfix, ran, result, date
#   table-*.txt       the side-by-side tables the suite prints
# The verbose test output goes to stdout.
set -u
out=${COMPAT_OUT:-/compat/out}
mkdir -p "$out"
postfix=$(postconf -d -h mail_version)
debian=$(cat /etc/debian_version)
echo "run: Postfix $postfix, Debian $debian (${COMPAT_SUITE:-?})"
rc=0
ran=
# step NAME DIR BINARY ARGS...: run one test binary in DIR (its testdata).
step() {
	name=$1 dir=$2
	shift 2
	echo "== run: $name"
	if (cd "$dir" && "$@" -test.v -test.count=1 2>&1) >"$out/$name.log" 2>&1; then
		r=pass
	else
		r=FAIL
		rc=1
	fi
	cat "$out/$name.log"
	# Top-level results only ("--- PASS: TestX (1.2s)"), SKIP named as such.
	# TestEndToEnd also says how many scenarios ran and which did not.
	# (go test prints a test's result before its subtests'.)
	tests=$(awk '
		/^    --- (PASS|FAIL|SKIP): TestEndToEnd\// {
			split($3, p, "/")
			if ($2 == "SKIP:") skipped = skipped (skipped ? " " : "") p[2]; else scen++
		}
		/^--- (PASS|FAIL|SKIP): Test/ { n++; name[n] = $3; res[n] = $2 }
		END {
			for (i = 1; i <= n; i++) {
				note = ""
				if (name[i] == "TestEndToEnd") note = scen " scenarios" (skipped ? "; not run: " skipped : "")
				if (res[i] != "PASS:") note = note (note ? "; " : "") tolower(substr(res[i], 1, length(res[i]) - 1))
				printf "%s%s%s", (i > 1 ? ", " : ""), name[i], (note ? " (" note ")" : "")
			}
		}' "$out/$name.log")
	ran="$ran${ran:+, }$tests"
	echo "== run: $name: $r"
}
# COMPAT_RUN (a go test -run pattern) runs only the matching tests of
# compat.test, and nothing else: to iterate on one test.
if [ -z "${COMPAT_RUN:-}" ]; then
	# TestStartupParams_docs checks the repository's docs, which the image has not.
	step startup-params /compat /compat/bin/startupparams.test -test.run '^TestStartupParams' -test.skip '^TestStartupParams_docs$'
	step replay /compat/scache /compat/bin/scache.test -test.run '^TestReplayRealScache'
fi
export COMPAT_TABLE="$out/table-e2e.txt"
step compat /compat /compat/bin/compat.test -test.timeout=15m -test.run "${COMPAT_RUN:-.}" \
	-compat.goscache="${COMPAT_GOSCACHE:-/compat/bin/goscache}"
result=pass
[ $rc = 0 ] || result=FAIL
{
	echo "suite=${COMPAT_SUITE:-}"
	echo "debian=$debian"
	echo "postfix=$postfix"
	echo "ran=$ran"
	echo "result=$result"
	echo "date=$(date -u +%Y-%m-%d)"
} >"$out/summary"
exit $rc

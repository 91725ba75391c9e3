#!/bin/sh
# docker.sh: run the compatibility suite against every Postfix that Debian
# ships, one container per Debian release, the releases in parallel.
#
#   compat-tests/docker.sh          stage, build the images, run the suites,
#                                   rewrite docs/compat-matrix.md
#   compat-tests/docker.sh --stage  only fill bin/compat-docker (for compose)
#   compat-tests/docker.sh --build  stage and build the images, run nothing
#   compat-tests/docker.sh --prepare
#                                   only the slow part that needs no Go:
#                                   the engine, the base images and each
#                                   image's Postfix layer (make test runs it
#                                   in the background while the checks run;
#                                   the full run then finds those layers in
#                                   Docker's build cache)
#   compat-tests/docker.sh --soak   stage, build the image of COMPAT_SOAK_SUITE,
#                                   run TestSoak alone for SOAK and write its
#                                   report to docs/soak.md and docs/soak/
#                                   (make soak)
#
# Knobs (environment):
#   COMPAT_SUITES     Debian releases to test (default "bullseye bookworm
#                     trixie sid": Postfix 3.5, 3.7, 3.10 and 3.11)
#   COMPAT_IMAGE      image name prefix (default goscache-compat; the image of
#                     a release is $COMPAT_IMAGE-$suite)
#   COMPAT_BASE       base image repository (default debian; the base of a
#                     release is $COMPAT_BASE:$suite)
#   COMPAT_PORT_BASE  first sink port (default 2600; release i uses
#                     COMPAT_PORT_BASE+20*i and the next two ports)
#   COMPAT_PARALLEL   how many releases run at once (default: all)
#   COMPAT_SOAK       how long the soak runs beside the suites (default 2m;
#                     0: no soak); its report stays in bin/compat-docker/out-soak
#   COMPAT_SOAK_SUITE the release whose image runs the soak (default trixie,
#                     or the first of COMPAT_SUITES)
#   SOAK, SOAK_SEED, SOAK_RATE, SOAK_NICE
#                     the soak's duration (--soak; default 10m), seed, steady
#                     messages per second, and the niceness of the processes
#                     in its container (compat-tests/soak_test.go)
#   COMPAT_RUN        run only the compat tests matching this go test -run
#                     pattern (e.g. '^TestSystemUpgrade$'), not the other
#                     steps nor the soak (unless COMPAT_SOAK is set);
#                     docs/compat-matrix.md is then left as it is
#
# On the host: Go (PATH or /usr/local/go/bin) and Docker. When dockerd is
# missing, Debian's docker.io is installed (root); when no engine runs, dockerd
# is started with no bridge network (--bridge=none --iptables=false);
# containers use --network host only. A base image that is neither present nor
# pullable (no registry reachable) is bootstrapped with
# "debootstrap --variant=minbase SUITE" from the archive this machine's apt
# uses and imported; it is reused from then on.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
stage=bin/compat-docker
suites=${COMPAT_SUITES:-bullseye bookworm trixie sid}
image=${COMPAT_IMAGE:-goscache-compat}
baserepo=${COMPAT_BASE:-debian}
portbase=${COMPAT_PORT_BASE:-2600}
parallel=${COMPAT_PARALLEL:-0}
matrix=docs/compat-matrix.md

log() { echo "compat-docker: $*" >&2; }

# stage fills the build context shared by every release's image. Everything
# the image needs from this repository is copied here, in this one place:
#   Dockerfile, setup.sh, setup-tools.sh, run.sh
#                       how the image is built and what it runs
#   bin/                test binaries, goscache and its .deb (/compat/bin),
#                       bin/next/ the .deb stamped with a higher version
#   scache/testdata/    the recorded conversations, from scache/server/testdata (/compat/scache)
stage() {
	rm -rf "$stage"
	mkdir -p "$stage/bin" "$stage/scache"
	cp compat-tests/setup.sh compat-tests/run.sh compat-tests/Dockerfile "$stage/"
	cp -r scache/server/testdata "$stage/scache/testdata"
	CGO_ENABLED=0 $GO test -c -tags compat -o "$stage/bin/compat.test" ./compat-tests
	CGO_ENABLED=0 $GO test -c -o "$stage/bin/scache.test" ./scache/server
	CGO_ENABLED=0 $GO test -c -o "$stage/bin/startupparams.test" ./cmd/goscache/startupparams
	if CGO_ENABLED=0 $GO build -o "$stage/bin/goscache" ./cmd/goscache 2>"$stage/goscache.err"; then
		rm -f "$stage/goscache.err"
	else
		if [ "${CI:-}" = true ]; then
			cat "$stage/goscache.err" >&2
			exit 1
		fi
		log "goscache does not build; the goscache side will be skipped"
		cat "$stage/goscache.err" >&2
		rm -f "$stage/goscache.err"
	fi
	# TestInstances runs scachectl: the one next to the goscache binary.
	CGO_ENABLED=0 $GO build -o "$stage/bin/scachectl" ./cmd/scachectl
	# TestSystemInstall installs goscache's Debian package (make deb); the
	# image installs curl, promtool and man with setup-tools.sh.
	sh cmd/goscache/deb/build.sh "$stage/bin" >/dev/null
	# TestSoak and TestSystemUpgrade upgrade to a package of a higher
	# version while mail flows, then downgrade back: the same build,
	# versioned above the changelog's (bin/next/).
	version=$(sed -n '1s/^goscache (\([^)]*\)).*/\1/p' cmd/goscache/deb/changelog)
	GOSCACHE_VERSION="$version+soak1" sh cmd/goscache/deb/build.sh "$stage/bin/next" >/dev/null
	cp cmd/goscache/deb/setup-tools.sh "$stage/"
}

# need CMD PACKAGE: install Debian's PACKAGE when CMD is missing (root only).
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing $2"
		# A fresh machine may have no package lists yet: update once, then install.
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 || {
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
		}
		command -v "$1" >/dev/null 2>&1 && return 0
		log "$1 is still missing after installing $2"
		exit 1
	fi
	log "$1 is missing (install $2)"
	exit 1
}

engine() {
	# Every container runs on the host's network namespace, whose
	# net.unix.max_dgram_qlen (10 by default) bounds the postlog socket's
	# queue: a Postfix instance logging through postlogd can deadlock its
	# master(8) after a reload with a queue that short (compat-tests/pfx,
	# DgramQueue). /proc/sys is read-only inside a container, so it is
	# raised here, on the host, for the sockets made from now on.
	q=$(cat /proc/sys/net/unix/max_dgram_qlen 2>/dev/null || echo 1024)
	if [ "$q" -lt 1024 ] && [ "$(id -u)" = 0 ]; then
		log "net.unix.max_dgram_qlen $q -> 1024 (the postlog socket's queue; see compat-tests/pfx DgramQueue)"
		echo 1024 >/proc/sys/net/unix/max_dgram_qlen
	fi
	# The client alone is not enough: an image may ship docker without
	# dockerd. Debian's docker.io brings both (and containerd, runc).
	need docker docker.io
	need dockerd docker.io
	docker info >/dev/null 2>&1 && return 0
	if [ "$(id -u)" != 0 ]; then
		log "no Docker engine is running (start one, or run as root)"
		exit 1
	fi
	log "starting dockerd --bridge=none --iptables=false"
	mkdir -p /tmp/compat-dockerd
	nohup dockerd --bridge=none --iptables=false --ip6tables=false >/tmp/compat-dockerd/dockerd.log 2>&1 &
	echo $! >/tmp/compat-dockerd/pid
	i=0
	until docker info >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 60 ]; then
			log "dockerd did not come up; see /tmp/compat-dockerd/dockerd.log"
			exit 1
		fi
		sleep 1
	done
}

# base_image SUITE: make $baserepo:SUITE exist: present, pulled, or
# bootstrapped with debootstrap and imported.
base_image() {
	base=$baserepo:$1
	docker image inspect "$base" >/dev/null 2>&1 && return 0
	if timeout 60 docker pull "$base" >/dev/null 2>&1; then
		return 0
	fi
	log "$base not available and not pullable: bootstrapping it (debootstrap --variant=minbase $1)"
	need debootstrap debootstrap
	mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
		awk '{print $2}' | head -1)
	mirror=${mirror:-http://deb.debian.org/debian}
	root=$(mktemp -d /tmp/compat-rootfs.XXXXXX)
	debootstrap --variant=minbase "$1" "$root/$1" "$mirror" >"$root/debootstrap.log" 2>&1 || {
		tail -20 "$root/debootstrap.log" >&2
		rm -rf "$root"
		exit 1
	}
	tar -C "$root/$1" -c . | docker import - "$base" >/dev/null
	rm -rf "$root"
}

# build SUITE: the release's image; the layer that installs Postfix is cached
# as long as setup.sh and the base image do not change.
build() {
	# The classic builder, said explicitly: it is what docker.io has
	# without the buildx plugin. Its output (a deprecation notice) is shown
	# only when the build fails.
	DOCKER_BUILDKIT=0 docker build --network host -q -t "$image-$1" --build-arg BASE_IMAGE="$baserepo:$1" "$stage" \
		>"$stage/build-$1.log" 2>&1 || {
		cat "$stage/build-$1.log" >&2
		exit 1
	}
}

# run SUITE PORT: the suite in the release's container. Its verbose output and
# results (summary, table) go to $stage/out-SUITE.
run() {
	out=$stage/out-$1
	rm -rf "$out"
	mkdir -p "$out"
	gos=/compat/bin/goscache
	[ -x "$stage/bin/goscache" ] || gos=none
	start=$(date +%s)
	rc=0
	docker run --rm --init --network host --name "$image-$1-run" \
		-v "$(pwd)/$out:/compat/out" \
		-e CI="${CI:-false}" -e COMPAT_GOSCACHE="$gos" -e COMPAT_PORT="$2" -e COMPAT_SUITE="$1" \
		-e COMPAT_RUN="${COMPAT_RUN:-}" \
		"$image-$1" >"$out/run.log" 2>&1 || rc=$?
	echo "seconds=$(($(date +%s) - start))" >>"$out/summary"
	echo "rc=$rc" >>"$out/summary"
	return $rc
}

# soak SUITE PORT DURATION: TestSoak (compat-tests/soak_test.go) in the
# release's container, with CAP_SYS_PTRACE to count the cache daemons' open
# descriptors (/proc/PID/fd of another user's process). Output and report go
# to $stage/out-soak.
soak() {
	out=$stage/out-soak
	rm -rf "$out"
	mkdir -p "$out"
	start=$(date +%s)
	rc=0
	docker run --rm --init --network host --name "$image-soak-run" \
		--cap-add SYS_PTRACE \
		-v "$(pwd)/$out:/compat/out" \
		-e CI="${CI:-false}" -e COMPAT_PORT="$2" -e SOAK="$3" -e SOAK_SEED="${SOAK_SEED:-}" \
		-e SOAK_RATE="${SOAK_RATE:-}" -e SOAK_OUT=/compat/out/report \
		"$image-$1" nice -n "${SOAK_NICE:-0}" /compat/bin/compat.test -test.run '^TestSoak$' -test.v \
		-test.count=1 -test.timeout=4h -compat.goscache=/compat/bin/goscache >"$out/run.log" 2>&1 || rc=$?
	echo "seconds=$(($(date +%s) - start))" >"$out/summary"
	echo "rc=$rc" >>"$out/summary"
	return $rc
}

# soak_report: the soak's verdict and table, for the CI log.
soak_report() {
	out=$stage/out-soak
	echo
	echo "======== soak ($soak_suite, SOAK=$1): rc=$(sed -n 's/^rc=//p' "$out/summary") in $(sed -n 's/^seconds=//p' "$out/summary")s"
	if [ "$(sed -n 's/^rc=//p' "$out/summary")" != 0 ]; then
		cat "$out/run.log"
	else
		grep -E '^(--- |ok|PASS|FAIL|== |    soak_test.go)' "$out/run.log" || true
		sed -n '/^== soak (seed/,$p' "$out/run.log" | grep -vE '^(--- |PASS|ok)' || true
	fi
}

# field SUITE KEY: a value from the release's summary.
field() { sed -n "s/^$2=//p" "$stage/out-$1/summary" 2>/dev/null | tail -1; }

# report SUITE: what the run showed, for the CI log.
report() {
	out=$stage/out-$1
	echo
	echo "======== $1: Postfix $(field "$1" postfix), Debian $(field "$1" debian): $(field "$1" result) in $(field "$1" seconds)s"
	if [ "$(field "$1" rc)" != 0 ]; then
		cat "$out/run.log"
	else
		# The test results, the tables and anything the tests printed
		# under "== compat"; the full log stays in $out/run.log.
		grep -E '^(--- |ok|PASS|FAIL|== )' "$out/run.log" || true
		for f in "$out"/table-*.txt; do
			[ -s "$f" ] || continue
			echo "== $(basename "$f" .txt)"
			cat "$f"
		done
	fi
}

# write_matrix: docs/compat-matrix.md from this run's summaries; a release
# not run this time keeps its row.
write_matrix() {
	new=$(mktemp)
	cat >"$new" <<'EOF'
# Tested with

Written by `make compat-docker` (compat-tests/docker.sh) after each run; do not
edit by hand. One row per Debian release: the Postfix that release ships, the
tests that ran in its container against that Postfix (docs/compat.md), the
result and the date of the run.

| Debian | Postfix | What ran | Result | Wall time | Date |
|---|---|---|---|---|---|
EOF
	for s in bullseye bookworm trixie sid $suites; do
		grep -qF "| $s " "$new" && continue
		if [ -s "$stage/out-$s/summary" ] && echo " $suites " | grep -qF " $s "; then
			printf '| %s (%s) | %s | %s | %s | %s s | %s |\n' "$s" "$(field "$s" debian)" "$(field "$s" postfix)" \
				"$(field "$s" ran)" "$(field "$s" result)" "$(field "$s" seconds)" "$(field "$s" date)" >>"$new"
		elif [ -f "$matrix" ]; then
			grep -F "| $s (" "$matrix" >>"$new" || true
		fi
	done
	mv "$new" "$matrix"
	chmod 0644 "$matrix"
}

soak_time=${COMPAT_SOAK:-2m}
# A run of some compat tests only (COMPAT_RUN) has no soak beside it.
[ -z "${COMPAT_RUN:-}" ] || soak_time=${COMPAT_SOAK:-0}
soak_suite=${COMPAT_SOAK_SUITE:-}
if [ -z "$soak_suite" ]; then
	case " $suites " in
	*" trixie "*) soak_suite=trixie ;;
	*) soak_suite=${suites%% *} ;;
	esac
fi
if [ "${1:-}" = --soak ]; then
	suites=$soak_suite
fi
if [ "${1:-}" = --prepare ]; then
	# The Dockerfile up to its Postfix layer, in a context of its own:
	# the same files as stage() copies there, so that the full build's
	# cache finds the layers this one made.
	prep=bin/compat-docker-prepare
	rm -rf "$prep"
	mkdir -p "$prep"
	cp compat-tests/setup.sh cmd/goscache/deb/setup-tools.sh "$prep/"
	sed '/^COPY run.sh/,$d' compat-tests/Dockerfile >"$prep/Dockerfile"
	stage=$prep
fi
[ "${1:-}" = --prepare ] || stage
[ "${1:-}" = --stage ] && exit 0
engine

# The releases' images are made at the same time too: bootstrapping and
# installing Postfix wait on the archive more than on the CPU.
t0=$(date +%s)
# apt-get must not run twice at once: debootstrap is installed up front.
for s in $suites; do
	docker image inspect "$baserepo:$s" >/dev/null 2>&1 || {
		need debootstrap debootstrap
		break
	}
done
pids=
for s in $suites; do
	(
		base_image "$s"
		log "building $image-$s from $baserepo:$s"
		build "$s"
	) &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" || {
		log "building the images failed"
		exit 1
	}
done
log "images ready in $(($(date +%s) - t0))s"
[ "${1:-}" = --build ] || [ "${1:-}" = --prepare ] && exit 0

# make soak: the soak alone, its report into docs/.
if [ "${1:-}" = --soak ]; then
	dur=${SOAK:-10m}
	log "soak in $image-$soak_suite for $dur (sink ports $portbase-$((portbase + 11)))"
	rc=0
	soak "$soak_suite" "$portbase" "$dur" || rc=$?
	soak_report "$dur"
	if [ -s "$stage/out-soak/report/soak.md" ]; then
		rm -rf docs/soak
		cp -r "$stage/out-soak/report/soak" docs/soak
		cp "$stage/out-soak/report/soak.md" docs/soak.md
		chmod -R a+rX docs/soak docs/soak.md
		echo "== soak: report in docs/soak.md"
	fi
	exit $rc
fi

# The releases run at the same time, each on its own sink ports: most of a
# run is waiting for Postfix to deliver.
# Wait for the runs by pid: a bare "wait" would also wait for the dockerd
# this script may have started in the background, which never exits.
# The short soak runs beside them, on the ports after the last release's.
soak_pid=
if [ "$soak_time" != 0 ]; then
	soak_port=$((portbase + 20 * $(echo $suites | wc -w)))
	log "soak in $image-$soak_suite for $soak_time (sink ports $soak_port-$((soak_port + 11)))"
	soak "$soak_suite" "$soak_port" "$soak_time" &
	soak_pid=$!
fi
i=0
n=0
runs=
for s in $suites; do
	log "running the suite in $image-$s (--network host, sink ports $((portbase + 20 * i))-$((portbase + 20 * i + 2)))"
	run "$s" $((portbase + 20 * i)) &
	runs="$runs $!"
	i=$((i + 1))
	n=$((n + 1))
	if [ "$parallel" -gt 0 ] && [ $n -ge "$parallel" ]; then
		for p in $runs; do wait "$p" || true; done
		runs=
		n=0
	fi
done
for p in $runs; do wait "$p" || true; done
[ -n "$soak_pid" ] && { wait "$soak_pid" || true; }
fail=0
for s in $suites; do
	report "$s"
	[ "$(field "$s" rc)" = 0 ] || fail=1
done
if [ -n "$soak_pid" ]; then
	soak_report "$soak_time"
	[ "$(sed -n 's/^rc=//p' "$stage/out-soak/summary")" = 0 ] || fail=1
fi
if [ -z "${COMPAT_RUN:-}" ]; then
	write_matrix
	echo
	echo "== compat-docker: $matrix"
	cat "$matrix"
fi
exit $fail

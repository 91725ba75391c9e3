#!/bin/sh
# docker.sh: run the compatibility suite inside a Debian 12 container.
#
#   compat-tests/docker.sh          stage, build the image, run the suite
#   compat-tests/docker.sh --stage  only fill bin/compat-docker (for compose)
#
# On the host: Go (PATH or /usr/local/go/bin) and Docker. When no Docker
# engine runs and we are root, dockerd is started with no bridge network
# (--bridge=none --iptables=false); containers use --network host only.
# When debian:bookworm is neither present nor pullable (no registry
# reachable), a minimal Debian 12 root is bootstrapped with debootstrap from
# the archive this machine's apt uses and imported as the base image.
set -eu
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
stage=bin/compat-docker
image=${COMPAT_IMAGE:-goscache-compat}
base=${BASE_IMAGE:-debian:bookworm}

log() { echo "compat-docker: $*" >&2; }

stage() {
	rm -rf "$stage"
	mkdir -p "$stage"
	cp compat-tests/setup.sh compat-tests/Dockerfile "$stage/"
	CGO_ENABLED=0 $GO test -c -tags compat -o "$stage/compat.test" ./compat-tests
	if CGO_ENABLED=0 $GO build -o "$stage/goscache" ./cmd/goscache 2>"$stage/goscache.err"; then
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
	# TestSystemInstall installs goscache's Debian package (make deb); the
	# image installs curl, promtool and man with setup-tools.sh.
	sh cmd/goscache/deb/build.sh "$stage" >/dev/null
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

base_image() {
	docker image inspect "$base" >/dev/null 2>&1 && return 0
	if timeout 60 docker pull "$base" >/dev/null 2>&1; then
		return 0
	fi
	log "$base not available and not pullable: bootstrapping it with debootstrap"
	need debootstrap debootstrap
	mirror=$(grep -hoE '(URIs:|deb) +https?://[^ ]*debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null |
		awk '{print $2}' | head -1)
	mirror=${mirror:-http://deb.debian.org/debian}
	root=$(mktemp -d /tmp/compat-rootfs.XXXXXX)
	debootstrap --variant=minbase bookworm "$root/bookworm" "$mirror" >"$root/debootstrap.log" 2>&1 || {
		tail -20 "$root/debootstrap.log" >&2
		exit 1
	}
	tar -C "$root/bookworm" -c . | docker import - "$base" >/dev/null
	rm -rf "$root"
}

stage
[ "${1:-}" = --stage ] && exit 0
engine
base_image
log "building $image from $base"
docker build --network host -q -t "$image" --build-arg BASE_IMAGE="$base" "$stage" >/dev/null
gos=/compat/bin/goscache
[ -x "$stage/goscache" ] || gos=none
log "running the suite in $image (--network host)"
docker run --rm --init --network host -e CI="${CI:-false}" -e COMPAT_GOSCACHE="$gos" "$image"

#!/bin/sh
# setup-tools.sh: install the Debian packages that make deb-check and the
# metrics checks use, each only when its command is missing (root and
# apt-get only; otherwise explain, and fail under CI=true).
#
#   setup-tools.sh                  lintian, man, promtool, curl (make setup)
#   setup-tools.sh CMD=PKG ...      only these (the compat image: curl, promtool, man)
set -eu

[ $# -gt 0 ] || set -- lintian=lintian man=man-db promtool=prometheus curl=curl

missing=
for pair in "$@"; do
	command -v "${pair%%=*}" >/dev/null 2>&1 || missing="$missing ${pair#*=}"
done
[ -n "$missing" ] || exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "setup-tools: missing:$missing (install them as root with apt-get)" >&2
	[ "${CI:-}" = true ] && exit 1
	exit 0
fi
echo "setup-tools: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have no package lists yet: update once, then install.
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 || {
	# Debian unstable's Release file carries a Valid-Until date a few days
	# ahead; an archive snapshot or a late clock must not stop the install.
	apt-get -o Acquire::Check-Valid-Until=false update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

#!/bin/sh
# version.sh: the version of goscache, from its one source: the first
# entry of cmd/goscache/deb/changelog (GOSCACHE_VERSION overrides it).
# build.sh and the Makefile stamp it into the binaries
# (cmd/internal/buildinfo) and name the package after it.
#
#   version.sh              the version, e.g. 0.1.0-1
#   version.sh -revision    the git commit of the tree, with -dirty when
#                           tracked files have uncommitted changes;
#                           "unknown" outside git
set -eu
cd "$(dirname "$0")/../../.."
if [ "${1:-}" = -revision ]; then
	rev=$(git rev-parse HEAD 2>/dev/null) || { echo unknown; exit 0; }
	git diff-index --quiet HEAD -- 2>/dev/null || rev=$rev-dirty
	echo "$rev"
	exit 0
fi
version=${GOSCACHE_VERSION:-$(sed -n '1s/^goscache (\([^)]*\)).*/\1/p' cmd/goscache/deb/changelog)}
[ -n "$version" ] || { echo "version.sh: no version in cmd/goscache/deb/changelog" >&2; exit 1; }
echo "$version"

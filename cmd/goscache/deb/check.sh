#!/bin/sh
# check.sh: what make deb-check proves about the package (run from make):
#   1. reproducible: two builds of the tree, the second with an empty Go
#      build cache, give byte-identical .debs;
#   2. lintian: no error and no warning (the package's overrides, each with
#      its reason, are in cmd/goscache/deb/lintian-overrides);
#   3. the binaries report the package's version and the commit, and a
#      GOSCACHE_VERSION rebuild (the upgrade tests') reports its own;
#   4. the documentation files are there: changelog, DEP-5 copyright,
#      operator's guide, alert rules, the exporter's unit.
#
#   cmd/goscache/deb/check.sh [OUTDIR]     (default OUTDIR: bin)
set -eu
cd "$(dirname "$0")/../../.."
export PATH="$PATH:/usr/local/go/bin"
out=${1:-bin}
deb=cmd/goscache/deb
mkdir -p "$out"
work=$(mktemp -d "$out/deb-check.XXXXXX")
work=$(cd "$work" && pwd)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "deb-check: $*" >&2; exit 1; }

version=$(sh $deb/version.sh)
revision=$(sh $deb/version.sh -revision)

echo "== deb-check: build 1 ($version, $revision)"
a=$(sh $deb/build.sh "$work/a")
echo "== deb-check: build 2, with an empty Go build cache"
b=$(GOCACHE="$work/gocache" sh $deb/build.sh "$work/b")
if ! cmp -s "$a" "$b"; then
	echo "deb-check: two builds of the same tree differ:" >&2
	for p in "$a" "$b"; do (cd "$(dirname "$p")" && ar t "$(basename "$p")" && md5sum "$(basename "$p")"); done >&2
	fail "not reproducible (compare with diffoscope $a $b)"
fi
echo "deb-check: $(basename "$a"): two builds identical ($(md5sum <"$a" | cut -c1-32))"

echo "== lintian $(basename "$a")"
lintian --fail-on error,warning --allow-root "$a" || fail "lintian reported errors or warnings"
echo "deb-check: lintian: no errors, no warnings"

root="$work/root"
dpkg-deb -x "$a" "$root"
doc=$root/usr/share/doc/goscache
for f in copyright changelog.Debian.gz operator.md.gz examples/goscache.rules.yml examples/goscache.rules.test.yml; do
	[ -s "$doc/$f" ] || fail "no /usr/share/doc/goscache/$f"
done
[ -s "$root/usr/lib/systemd/system/goscache-exporter.service" ] || fail "no goscache-exporter.service"
head -1 "$doc/copyright" | grep -qx 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' ||
	fail "copyright is not machine-readable (DEP-5)"
zcat "$doc/changelog.Debian.gz" | head -1 | grep -q "^goscache ($version) " || fail "changelog's first entry is not $version"

# The binaries say which build they are.
short=$(printf '%.12s' "${revision%-dirty}")
case $revision in *-dirty) short=$short-dirty ;; esac
want="$version (revision $short,"
got=$("$root/usr/lib/postfix/sbin/goscache" -version)
case $got in "goscache $want"*) ;; *) fail "goscache -version: $got (want goscache $want ...)" ;; esac
got=$("$root/usr/bin/scachectl" -socket /nonexistent version 2>/dev/null | head -1 || true)
case $got in "scachectl  $want"*) ;; *) fail "scachectl version: $got (want scachectl  $want ...)" ;; esac
echo "deb-check: goscache and scachectl report $version (revision $short)"

# A rebuild with GOSCACHE_VERSION, as the upgrade tests make one.
next=$version+check1
n=$(GOSCACHE_VERSION=$next sh $deb/build.sh "$work/next")
[ "$(basename "$n")" = "goscache_${next}_$(dpkg --print-architecture).deb" ] || fail "GOSCACHE_VERSION=$next built $n"
dpkg-deb -x "$n" "$work/nroot"
got=$("$work/nroot/usr/lib/postfix/sbin/goscache" -version)
case $got in "goscache $next (revision"*) ;; *) fail "GOSCACHE_VERSION=$next: goscache -version: $got" ;; esac
zcat "$work/nroot/usr/share/doc/goscache/changelog.Debian.gz" | head -1 | grep -q "^goscache ($next) " ||
	fail "GOSCACHE_VERSION=$next: the changelog does not start with it"
echo "deb-check: GOSCACHE_VERSION=$next: package, binaries and changelog carry it"
echo "deb-check: $a ok" >&2

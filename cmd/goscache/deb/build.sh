#!/bin/sh
# build.sh: build goscache_<version>_<arch>.deb with dpkg-deb on a staged
# tree (make deb). The version is the first entry of cmd/goscache/deb/changelog
# (version.sh), stamped into the binaries with the git commit
# (cmd/internal/buildinfo); the architecture is GOARCH's Debian name (dpkg
# --print-architecture by default). Prints the path of the package.
#
#   cmd/goscache/deb/build.sh [OUTDIR]     (default OUTDIR: bin)
#
# GOSCACHE_VERSION, when set, overrides the changelog's version (a rebuilt
# package with a higher or lower version, for the upgrade tests): the
# package, the binaries and a generated first changelog entry all carry it.
#
# Reproducible: the same commit (and Go release) gives the same bytes
# (make deb-check builds twice and compares). File times are
# SOURCE_DATE_EPOCH, the commit's time (the changelog's date outside git);
# the binaries are built with -trimpath and an empty build id; owners,
# modes and the order of the archive are fixed.
#
# Needs Go (PATH or /usr/local/go/bin), dpkg-deb and gzip.
set -eu
cd "$(dirname "$0")/../../.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
out=${1:-bin}
deb=cmd/goscache/deb
daemon_dir=/usr/lib/postfix/sbin # Debian's daemon_directory (postconf -d -h daemon_directory)

version=$(sh "$deb/version.sh")
revision=$(sh "$deb/version.sh" -revision)
arch=${DEB_ARCH:-$(dpkg --print-architecture)}
case $arch in
amd64 | arm64 | 386 | riscv64 | ppc64le | s390x) goarch=$arch ;;
i386) goarch=386 ;;
armhf) goarch=arm ;;
*) echo "build.sh: no Go architecture for Debian's $arch" >&2; exit 1 ;;
esac

mkdir -p "$out"
root=$(mktemp -d "$out/deb-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"
# Directories 0755, files 0644 whatever the umask.
umask 022

doc=$root/usr/share/doc/goscache
mkdir -p "$root/DEBIAN" "$root$daemon_dir" "$root/usr/bin" \
	"$root/usr/share/man/man8" "$root/usr/share/man/man1" "$doc/examples" \
	"$root/usr/lib/systemd/system" "$root/usr/share/lintian/overrides"

# Position-independent (as Debian builds its binaries; a static PIE is what
# lintian expects of a Go binary), stripped (-s -w), reproducible (-trimpath,
# no build id), without cgo: it runs on any Debian release with Postfix.
bi=github.com/goscache/goscache/cmd/internal/buildinfo
for cmd in goscache scachectl; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $GO build -buildmode=pie -trimpath -buildvcs=false \
		-ldflags="-s -w -buildid= -X $bi.version=$version -X $bi.revision=$revision" \
		-o "$root/$cmd.bin" "./cmd/$cmd"
done
install -m 0755 "$root/goscache.bin" "$root$daemon_dir/goscache"
install -m 0755 "$root/scachectl.bin" "$root/usr/bin/scachectl"
rm -f "$root"/*.bin

gzip -9n <docs/man/goscache.8 >"$root/usr/share/man/man8/goscache.8.gz"
gzip -9n <docs/man/scachectl.1 >"$root/usr/share/man/man1/scachectl.1.gz"
install -m 0644 "$deb/copyright" "$doc/copyright"
# The changelog of a package with a Debian revision (0.1.0-1) is
# changelog.Debian.gz, of a native one (a GOSCACHE_VERSION without "-")
# changelog.gz (Debian policy 12.7). A GOSCACHE_VERSION rebuild gets a first
# entry of its own, so that the changelog names the package's version.
case $version in
*-*) changelog=changelog.Debian.gz ;;
*) changelog=changelog.gz ;;
esac
{
	if [ -n "${GOSCACHE_VERSION:-}" ] && [ "$version" != "$(GOSCACHE_VERSION= sh "$deb/version.sh")" ]; then
		printf 'goscache (%s) unstable; urgency=medium\n\n' "$version"
		printf '  * Rebuilt from %s with GOSCACHE_VERSION=%s.\n\n' "$revision" "$version"
		sed -n '0,/^ -- /{/^ -- /p}' "$deb/changelog"
		echo
	fi
	cat "$deb/changelog"
} | gzip -9n >"$doc/$changelog"
gzip -9n <docs/operator.md >"$doc/operator.md.gz"
install -m 0644 docs/examples/goscache.rules.yml docs/examples/goscache.rules.test.yml "$doc/examples/"
install -m 0644 docs/examples/goscache-exporter.service "$root/usr/lib/systemd/system/"
install -m 0644 "$deb/lintian-overrides" "$root/usr/share/lintian/overrides/goscache"
chmod 0644 "$root"/usr/share/man/*/*.gz "$doc"/*.gz

install -m 0755 "$deb/postinst" "$deb/prerm" "$root/DEBIAN/"
# Installed-Size as dpkg-gencontrol counts it: each file's size in KiB,
# rounded up, whatever the file system's blocks.
size=$(find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%s\n' | awk '{ s += int(($1 + 1023) / 1024) } END { print s + 0 }')
# The maintainer is the changelog's: one place names the project.
maintainer=$(sed -n '0,/^ -- /s/^ -- \(.*>\)  .*/\1/p' "$deb/changelog")
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s|@MAINTAINER@|$maintainer|" \
	"$deb/control" >"$root/DEBIAN/control"
(cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

pkg="$out/goscache_${version}_${arch}.deb"
# SOURCE_DATE_EPOCH: the commit's time (outside git the changelog's date),
# so that the archive's member times do not change from build to build.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) ||
		SOURCE_DATE_EPOCH=$(date -d "$(sed -n 's/^ -- .*>  //p' "$deb/changelog" | head -1)" +%s)
fi
export SOURCE_DATE_EPOCH
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$pkg" >/dev/null
echo "$pkg"

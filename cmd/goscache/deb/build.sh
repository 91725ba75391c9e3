#!/bin/sh
# build.sh: build goscache_<version>_<arch>.deb with dpkg-deb on a staged
# tree (make deb). The version is the first entry of cmd/goscache/deb/changelog;
# the architecture is GOARCH's Debian name (dpkg --print-architecture by
# default). Prints the path of the package.
#
#   cmd/goscache/deb/build.sh [OUTDIR]     (default OUTDIR: bin)
#
# GOSCACHE_VERSION, when set, overrides the changelog's version (a rebuilt
# package with a higher or lower version, for the upgrade tests).
#
# Needs Go (PATH or /usr/local/go/bin), dpkg-deb and gzip.
set -eu
cd "$(dirname "$0")/../../.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
out=${1:-bin}
deb=cmd/goscache/deb
daemon_dir=/usr/lib/postfix/sbin # Debian's daemon_directory (postconf -d -h daemon_directory)

version=${GOSCACHE_VERSION:-$(sed -n '1s/^goscache (\([^)]*\)).*/\1/p' "$deb/changelog")}
[ -n "$version" ] || { echo "build.sh: no version in $deb/changelog" >&2; exit 1; }
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

mkdir -p "$root/DEBIAN" "$root$daemon_dir" "$root/usr/bin" \
	"$root/usr/share/man/man8" "$root/usr/share/man/man1" "$root/usr/share/doc/goscache"

# Position-independent (as Debian builds its binaries; a static PIE is what
# lintian expects of a Go binary), stripped (-s -w), reproducible (-trimpath,
# no build id), without cgo: it runs on any Debian release with Postfix.
for cmd in goscache scachectl; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch $GO build -buildmode=pie -trimpath -buildvcs=false \
		-ldflags='-s -w -buildid=' -o "$root/$cmd.bin" "./cmd/$cmd"
done
install -m 0755 "$root/goscache.bin" "$root$daemon_dir/goscache"
install -m 0755 "$root/scachectl.bin" "$root/usr/bin/scachectl"
rm -f "$root"/*.bin

gzip -9n <docs/man/goscache.8 >"$root/usr/share/man/man8/goscache.8.gz"
gzip -9n <docs/man/scachectl.1 >"$root/usr/share/man/man1/scachectl.1.gz"
install -m 0644 "$deb/copyright" "$root/usr/share/doc/goscache/copyright"
# A native package's changelog is changelog.gz (Debian policy 12.7).
gzip -9n <"$deb/changelog" >"$root/usr/share/doc/goscache/changelog.gz"
chmod 0644 "$root"/usr/share/man/*/*.gz "$root/usr/share/doc/goscache/changelog.gz"

install -m 0755 "$deb/postinst" "$deb/prerm" "$root/DEBIAN/"
size=$(du -k -s --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" "$deb/control" >"$root/DEBIAN/control"
(cd "$root" && find usr -type f | LC_ALL=C sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"

pkg="$out/goscache_${version}_${arch}.deb"
# SOURCE_DATE_EPOCH: the changelog's date, so that the archive's member
# times do not change from build to build.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(date -d "$(sed -n 's/^ -- .*>  //p' "$deb/changelog" | head -1)" +%s)}
export SOURCE_DATE_EPOCH
dpkg-deb --root-owner-group -Zxz --build "$root" "$pkg" >/dev/null
echo "$pkg"

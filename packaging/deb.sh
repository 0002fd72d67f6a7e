#!/usr/bin/env bash
# Builds callmesh_<version>_<arch>.deb (`make deb`): the files of `make install` with PREFIX=/usr,
# laid out as Debian wants (libraries in the multiarch folder, configuration in /etc as a
# conffile, the unit in /lib/systemd/system, compressed man pages and documentation, the
# copyright file instead of LICENSE), stripped, with the dependencies on Debian's runtime
# libraries computed by dpkg-shlibdeps. Then runs lintian on it; lintian-overrides explains each
# tag that is expected (packaging/deb/lintian-overrides).
# Usage: deb.sh --bazel-bin DIR --out DIR [--no-lintian] [--fast]
#   --fast: gzip -1 instead of xz (for tests; the files are the same)
set -euo pipefail
cd "$(dirname "$0")/.."

bazel_bin="" out="" lintian=1 compression=(-Zxz)
while [ $# -gt 0 ]; do
  case "$1" in
    --bazel-bin) bazel_bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-lintian) lintian=0; shift ;;
    --fast) compression=(-Zgzip -z1); shift ;;
    *) echo "deb.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$bazel_bin" ] && [ -n "$out" ] || { echo "usage: deb.sh --bazel-bin DIR --out DIR" >&2; exit 2; }

version=$(tr -d ' \n' < VERSION)
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
soname=$(packaging/soname.sh VERSION)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
doc=$root/usr/share/doc/callmesh

packaging/install.sh --bazel-bin "$bazel_bin" --destdir "$root" --prefix /usr \
  --libdir "/usr/lib/$multiarch" --sysconfdir /etc --systemdunitdir /lib/systemd/system \
  --docdir /usr/share/doc/callmesh --no-manifest

# Debian's rules for documentation: the copyright file (pointing at common-licenses) instead of
# a LICENSE copy, a Debian changelog, compressed docs and man pages.
rm "$doc/LICENSE"
install -m 0644 packaging/deb/copyright "$doc/copyright"
date=$(git log -1 --format=%cD 2>/dev/null || date -R)
maintainer=${DEB_MAINTAINER:-"callmesh maintainers <callmesh@example.org>"}
cat > "$doc/changelog" <<CHANGELOG
callmesh ($version) unstable; urgency=medium

  * Release $version; the changes are in /usr/share/doc/callmesh/CHANGELOG.md.gz.

 -- $maintainer  $date
CHANGELOG
gzip -9n "$doc/changelog" "$doc/CHANGELOG.md" "$doc/README.md"
gzip -9n "$root"/usr/share/man/man*/*
install -D -m 0644 packaging/deb/lintian-overrides "$root/usr/share/lintian/overrides/callmesh"

# Stripped programs and libraries (Bazel leaves symbols in).
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$root"/usr/bin/* "$root/usr/lib/$multiarch/libcallmesh.so.$version"
strip --strip-debug --enable-deterministic-archives "$root/usr/lib/$multiarch/libcallmesh.a"

# Control files.
mkdir -p "$root/DEBIAN" "$work/debian"
printf 'Source: callmesh\n\nPackage: callmesh\nArchitecture: any\n' > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e"$root/usr/bin/callmeshd" -e"$root/usr/bin/callmesh" \
  -e"$root/usr/bin/protoc-gen-callmesh" -e"$root/usr/lib/$multiarch/libcallmesh.so.$version" \
  2>"$work/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p') || {
  cat "$work/shlibdeps.log" >&2
  exit 1
}
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
  packaging/deb/control.in > "$root/DEBIAN/control"
echo /etc/callmesh/callmeshd.yaml > "$root/DEBIAN/conffiles"
echo "libcallmesh ${soname#libcallmesh.so.} callmesh (>= $version)" > "$root/DEBIAN/shlibs"
echo "activate-noawait ldconfig" > "$root/DEBIAN/triggers"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
  xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root"/DEBIAN/*
find "$root" -type d -exec chmod 0755 {} +

mkdir -p "$out"
deb="$out/callmesh_${version}_${arch}.deb"
dpkg-deb --root-owner-group "${compression[@]}" --build "$root" "$deb" > /dev/null
echo "built $deb ($(du -h "$deb" | cut -f1), installs ${installed_size} KiB)"
echo "Depends: $depends"

if [ "$lintian" = 1 ]; then
  if ! command -v lintian > /dev/null; then
    echo "deb.sh: installing lintian (apt-get)"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends lintian
  fi
  # Fails on errors and warnings (--show-overrides would count the overridden ones as well, so
  # the overridden tags, each explained in packaging/deb/lintian-overrides, are listed after).
  lintian --info --fail-on error,warning "$deb"
  echo "lintian: no errors or warnings; overridden, with the reason in packaging/deb/lintian-overrides:"
  lintian --show-overrides "$deb" 2> /dev/null | grep '^O:' || true
fi

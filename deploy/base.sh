#!/usr/bin/env bash
# Makes the base image localhost/debian:bookworm-local once: `debootstrap --variant=minbase
# bookworm` from Debian's archive, trimmed as Debian's own bookworm-slim image is (no manuals,
# documentation other than copyright files, translations, or apt caches), then imported into
# podman. Later runs reuse the image; REBUILD_BASE=1 makes it again. Where a registry is
# reachable, use debian:bookworm-slim instead (BASE_IMAGE=debian:bookworm-slim make images).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

if [ "${REBUILD_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
  echo "base: reusing $BASE_IMAGE ($(podman image inspect --format '{{.Created}}' "$BASE_IMAGE"))"
  exit 0
fi
case "$BASE_IMAGE" in
  localhost/*) ;;
  *) die "$BASE_IMAGE is not a local image; pull it (podman pull $BASE_IMAGE) instead" ;;
esac

rootfs=$(mktemp -d /var/tmp/callmesh-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base: debootstrap --variant=minbase bookworm from $MIRROR (a few minutes)"
started=$(date +%s)
if ! debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" > "$rootfs.log" 2>&1; then
  tail -n 20 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  die "debootstrap failed (log above)"
fi
rm -f "$rootfs.log"

# What bookworm-slim leaves out, now and for every package installed on top of it.
cat > "$rootfs/etc/dpkg/dpkg.cfg.d/callmesh-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat > "$rootfs/etc/apt/apt.conf.d/90callmesh-slim" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
CFG
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian}/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
  "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
# The same suites as the host and as Debian's image: the release, its updates, its security fixes.
cat > "$rootfs/etc/apt/sources.list" <<LIST
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
LIST

tar --numeric-owner -C "$rootfs" -c . |
  podman import -q --change 'CMD ["bash"]' --message "debootstrap --variant=minbase bookworm, slimmed" \
    - "$BASE_IMAGE" > /dev/null
echo "base: made $BASE_IMAGE in $(($(date +%s) - started)) s," \
  "$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE" | numfmt --to=si)B"

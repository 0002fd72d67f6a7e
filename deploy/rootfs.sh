#!/bin/bash
# Runs inside the `libraries` stage of the Containerfiles: assembles DEST, the whole file system of
# a runtime image built FROM scratch, from the binaries given and what they need on this Debian:
#   - the binaries, at the same paths, and /bin/sh (dash, 130 kB): Podman turns Kubernetes exec
#     probes into `/bin/sh -c '<command> || exit 1'` health checks;
#   - every shared library they load (ldd) and the dynamic loader, as regular files under the
#     merged /usr layout (/lib and /lib64 are links into /usr, as on Debian 12);
#   - the copyright file of each Debian package those libraries come from;
#   - /etc/passwd and /etc/group with root and the unprivileged user callmesh (10001), /tmp, and
#     /var/lib/callmesh (the journal's mount point) owned by callmesh.
# Fails if a binary needs a library that is not installed.
#
#   rootfs.sh DEST BINARY...
set -euo pipefail
dest=$1
shift

if ldd "$@" | grep 'not found'; then
  echo "rootfs.sh: a library above is not installed in this stage" >&2
  exit 1
fi

set -- "$@" /usr/bin/dash
mkdir -p "$dest/usr/bin" "$dest/usr/lib/x86_64-linux-gnu" "$dest/usr/lib64" "$dest/etc" \
  "$dest/var/lib"
ln -s usr/bin "$dest/bin"
ln -s usr/lib "$dest/lib"
ln -s usr/lib64 "$dest/lib64"
for binary in "$@"; do
  cp -a --parents "$binary" "$dest"
done
ln -s dash "$dest/usr/bin/sh"

mapfile -t libraries < <(ldd "$@" | awk '/=> \// {print $3} /^\t\/[^ ]*ld-linux/ {print $1}' | sort -u)
packages=()
for library in "${libraries[@]}"; do
  cp -L "$library" "$dest/usr/${library#/usr/}"
  owner=$(dpkg -S "$library" 2> /dev/null || dpkg -S "/usr${library#/usr}" 2> /dev/null ||
    dpkg -S "${library#/usr}")
  packages+=("${owner%%:*}")
done
for package in $(printf '%s\n' "${packages[@]}" | sort -u); do
  if [ -f "/usr/share/doc/$package/copyright" ]; then
    cp --parents "/usr/share/doc/$package/copyright" "$dest"
  fi
done

printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
  'callmesh:x:10001:10001:callmesh:/var/lib/callmesh:/usr/sbin/nologin' > "$dest/etc/passwd"
printf '%s\n' 'root:x:0:' 'callmesh:x:10001:' > "$dest/etc/group"
install -d -m 1777 "$dest/tmp"
install -d -o 10001 -g 10001 -m 0750 "$dest/var/lib/callmesh"
echo "rootfs.sh: $# programs, ${#libraries[@]} libraries from $(printf '%s\n' "${packages[@]}" | sort -u | wc -l) packages, $(du -sh "$dest" | cut -f1)"

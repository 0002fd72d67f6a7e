#!/usr/bin/env bash
# Writes callmesh-<version>.tar.gz (`make dist`): every file git tracks, as it is in the working
# tree, under callmesh-<version>/, plus a COMMIT file (the commit it was made from, which
# tools/build/workspace_status.sh stamps into --version when there is no git). It builds offline
# exactly as the repository does: `make test`, `make install`, or as another project's external
# Bazel repository (http_archive or local_repository of the unpacked folder).
# Usage: dist.sh --out DIR
set -euo pipefail
cd "$(dirname "$0")/.."
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    *) echo "dist.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "usage: dist.sh --out DIR" >&2; exit 2; }
git rev-parse --git-dir > /dev/null 2>&1 || { echo "dist.sh: needs a git checkout" >&2; exit 1; }

version=$(tr -d ' \n' < VERSION)
name=callmesh-$version
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/$name"
# Tracked files that still exist (a deletion not yet committed is left out).
git ls-files -z | while IFS= read -r -d '' file; do
  [ -e "$file" ] || [ -L "$file" ] && printf '%s\0' "$file"
done | tar --null -T - -cf - | tar -xf - -C "$work/$name"
tools/build/workspace_status.sh | awk '{ print $2 }' > "$work/$name/COMMIT"
mkdir -p "$out"
tarball="$(cd "$out" && pwd)/$name.tar.gz"
# Reproducible: sorted names, fixed owner and times (the commit's date).
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" -C "$work" -cf - "$name" |
  gzip -9n > "$tarball"
echo "wrote $tarball ($(du -h "$tarball" | cut -f1), $(tar -tzf "$tarball" | grep -vc '/$') files, commit $(cat "$work/$name/COMMIT"))"

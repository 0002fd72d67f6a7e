#!/usr/bin/env bash
# Removes exactly what install.sh installed, as listed in its manifest: its files and symlinks, then
# the folders it created, once they are empty. A configuration file edited since it was installed is kept
# (and said so), as dpkg keeps a changed conffile.
# Usage: uninstall.sh --prefix DIR [--destdir DIR]
set -euo pipefail
prefix="" destdir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2 ;;
    --destdir) destdir=$2 ;;
    *) echo "uninstall.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift 2
done
prefix=${prefix%/}
manifest="$destdir$prefix/share/callmesh/install-manifest.txt"
if [ ! -f "$manifest" ]; then
  echo "uninstall.sh: $manifest not found: callmesh is not installed under $destdir$prefix" >&2
  exit 1
fi
declare -A installed_sha
created_dirs=()
while read -r kind sha path; do
  [ "$kind" = conffile ] && installed_sha[$path]=$sha
  [ "$kind" = dir ] && created_dirs+=("$sha")
done < "$manifest"
removed=0
while read -r kind path; do
  [ "$kind" = file ] || continue
  if [ -n "${installed_sha[$path]:-}" ] && [ -f "$destdir$path" ] &&
    [ "$(sha256sum < "$destdir$path" | cut -d' ' -f1)" != "${installed_sha[$path]}" ]; then
    echo "uninstall.sh: kept $path (edited since it was installed)"
    continue
  fi
  if [ -e "$destdir$path" ] || [ -L "$destdir$path" ]; then
    rm -f "$destdir$path"
    removed=$((removed + 1))
  fi
done < "$manifest"
# The folders the install created, deepest first, if nothing else has been put in them since.
if [ ${#created_dirs[@]} -gt 0 ]; then
  for dir in $(printf '%s\n' "${created_dirs[@]}" | sort -r); do
    rmdir "$destdir$dir" 2>/dev/null || true
  done
fi
echo "removed $removed files of callmesh from $destdir$prefix"

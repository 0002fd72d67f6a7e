#!/usr/bin/env bash
# Prints the SONAME of the callmesh SDK's shared library for the version in VERSION_FILE: before
# 1.0 every minor release may change the ABI, so 0.MINOR is part of the name (libcallmesh.so.0.2);
# from 1.0 on, only the major version (libcallmesh.so.1).
# Usage: soname.sh VERSION_FILE [--flag]   (--flag: as a linker option, -soname=...)
set -euo pipefail
IFS=. read -r major minor _ <<< "$(tr -d ' \n' < "$1")"
if [ "$major" = 0 ]; then soname="libcallmesh.so.0.$minor"; else soname="libcallmesh.so.$major"; fi
if [ "${2:-}" = --flag ]; then echo "-soname=$soname"; else echo "$soname"; fi

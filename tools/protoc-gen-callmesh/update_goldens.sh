#!/usr/bin/env bash
# Rewrites tools/protoc-gen-callmesh/testdata/golden/*.golden from the current plugin. Review the
# diff (git diff tools/protoc-gen-callmesh/testdata/golden) before keeping it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUTPUT_BASE=${OUTPUT_BASE:-$(bazel info output_base 2>/dev/null)}
bazel --output_base="$OUTPUT_BASE" build --symlink_prefix=/ //tools/protoc-gen-callmesh
BIN=$(bazel --output_base="$OUTPUT_BASE" info --symlink_prefix=/ bazel-bin 2>/dev/null)
mkdir -p tools/protoc-gen-callmesh/testdata/golden
tools/protoc-gen-callmesh/golden_test.sh "$BIN/tools/protoc-gen-callmesh/protoc-gen-callmesh" \
  --update

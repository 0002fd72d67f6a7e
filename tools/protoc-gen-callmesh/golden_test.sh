#!/usr/bin/env bash
# Golden-file test of protoc-gen-callmesh: runs the real plugin through /usr/bin/protoc on
# testdata/*.proto. Good inputs must produce exactly testdata/golden/*.golden; bad inputs must be
# refused with a message naming the problem, and nothing written.
#
#   golden_test.sh PLUGIN              # the test (Bazel passes the plugin it built)
#   golden_test.sh PLUGIN --update     # rewrite the goldens (run from the workspace root; see
#                                      # update_goldens.sh)
set -uo pipefail
PLUGIN=$(realpath "$1")
UPDATE=${2:-}
TD=tools/protoc-gen-callmesh/testdata
OUT=$(mktemp -d "${TEST_TMPDIR:-/tmp}/callmesh-golden.XXXXXX")
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# gen NAME [PARAMETERS] -> runs protoc with the plugin on testdata/NAME.proto into a fresh folder.
gen() {
  rm -rf "$OUT" && mkdir -p "$OUT"
  /usr/bin/protoc -I. --plugin=protoc-gen-callmesh="$PLUGIN" \
    --callmesh_out="${2:+$2:}$OUT" "$TD/$1.proto"
}

expect_golden() {  # expect_golden NAME [PARAMETERS]
  local name=$1 params=${2:-}
  if ! gen "$name" "$params"; then fail "$name.proto was refused"; return; fi
  for ext in h cc; do
    local got=$OUT/$TD/$name.callmesh.$ext want=$TD/golden/$name.callmesh.$ext.golden
    if [ "$UPDATE" = "--update" ]; then
      cp "$got" "$want" && echo "updated $want"
    elif diff -u "$want" "$got"; then
      echo "ok: $name.callmesh.$ext matches its golden"
    else
      fail "$name.callmesh.$ext differs from $want (update: tools/protoc-gen-callmesh/update_goldens.sh)"
    fi
  done
}

expect_refused() {  # expect_refused NAME PARAMETERS EXPECTED-MESSAGE
  local name=$1 params=$2 expected=$3 output
  if output=$(gen "$name" "$params" 2>&1); then fail "$name.proto ($params) was accepted"; return; fi
  if ! grep -qF -- "$expected" <<<"$output"; then
    fail "$name.proto: expected an error containing [$expected], got [$output]"
    return
  fi
  if [ -n "$(find "$OUT" -type f)" ]; then fail "$name.proto: refused but files were written"; return; fi
  echo "ok: $name.proto refused: $output"
}

expect_golden shop
expect_golden keywords
expect_golden no_package
expect_golden bad_streaming skip_streaming
expect_golden events

expect_refused bad_streaming "" \
  "method bad.v1.Feed.Watch is server-streaming; callmesh stubs are unary only"
expect_refused bad_method_clash "" \
  "method bad.v1.Foo.BarAsync: generated member FooClient::BarAsync clashes with the one generated for method Bar"
expect_refused bad_class_clash "" \
  "service bad.v1.Foo: generated class FooClient clashes with message bad.v1.FooClient"
expect_refused bad_service_clash "" \
  "service bad.v1.Foo: generated class FooClient clashes with service bad.v1.FooClient"
expect_refused bad_keyword_package "" \
  "package 'shop.namespace' has the C++ keyword 'namespace' as a component"
expect_refused bad_event_reply "" \
  "method bad.v1.StockEvents.Restocked returns bad.v1.Stock; an event of an event service (a service whose name ends in Events) returns google.protobuf.Empty"
expect_refused bad_event_clash "" \
  "service bad.v1.ClashEvents: generated class ClashEventsPublisher clashes with message bad.v1.ClashEventsPublisher"
expect_refused shop "frobnicate" "unknown parameter 'frobnicate'"
expect_refused shop "skip_streaming,color=blue" "unknown parameter 'color=blue'"

rm -rf "$OUT"
if [ "$failures" -gt 0 ]; then echo "$failures failure(s)"; exit 1; fi
echo "all golden checks passed"

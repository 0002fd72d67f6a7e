#!/usr/bin/env bash
# Re-creates journal/: a journal of format "1" written by a real callmeshd of that format (round
# eight, commit 52c540c), for //tests/integration:journal_upgrade_test. Not run by the tests.
#
#   OLD_CALLMESHD=/path/to/callmeshd-of-52c540c tests/integration/testdata/journal_format1/make.sh
#
# What it holds (the sidecar is killed with SIGKILL at the end, like a crash):
#   - "done":    SayHello to greeter, SUCCEEDED, its completion owed to the callback service
#                "upgrade-callback", which never existed (delivery PENDING);
#   - "pending": SayHello to greeter with delay_ms 3000, RUNNING (attempt 1 was in flight at the
#                kill), with the same callback.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
: "${OLD_CALLMESHD:?set OLD_CALLMESHD to a callmeshd that writes journal format 1}"
bin=$(cd "$root" && bazel info -c opt bazel-bin 2>/dev/null)
work=$(mktemp -d)
trap 'kill -9 $sidecar $greeter 2>/dev/null || true; rm -rf "$work"' EXIT
port=$((20000 + RANDOM % 20000))
"$OLD_CALLMESHD" --listen=127.0.0.1:$port --data-dir="$work/journal" --log-level=warn &
sidecar=$!
sleep 1
"$bin/services/greeter/greeter_server" --listen=127.0.0.1:0 --sidecar=127.0.0.1:$port &
greeter=$!
sleep 1
cli() { "$bin/cli/callmesh" --sidecar 127.0.0.1:$port "$@"; }
done_cid=$(cli invoke greeter SayHello -d '{"name": "done"}' --async --callback upgrade-callback \
  --source upgrade-test)
cli calls wait "$done_cid" > /dev/null
cli invoke greeter SayHello -d '{"name": "pending", "delay_ms": 3000}' --async \
  --callback upgrade-callback --source upgrade-test
sleep 0.5
kill -9 $sidecar
wait $sidecar 2>/dev/null || true
rm -rf "$here/journal"
mkdir "$here/journal"
# The database itself; not RocksDB's info logs or its lock file.
(cd "$work/journal" && cp CURRENT IDENTITY MANIFEST-* OPTIONS-* ./*.log "$here/journal/" \
  && cp ./*.sst "$here/journal/" 2>/dev/null || true)
ls -la "$here/journal"

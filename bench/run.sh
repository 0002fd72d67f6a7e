#!/usr/bin/env bash
# `make bench`: installs the benchmark's Debian packages (bench/install_deps.sh), builds the
# optimized binaries, and runs bench/run.py (see its --help; arguments are passed on).
#   BAZEL="bazel --output_base=..." BAZEL_FLAGS="--symlink_prefix=/" bench/run.sh --quick
set -euo pipefail
cd "$(dirname "$0")/.."
./bench/install_deps.sh
BAZEL=${BAZEL:-bazel}
BAZEL_FLAGS=${BAZEL_FLAGS:-}
# bench/brokers targets are tagged manual (they need librabbitmq-dev and libnats-dev, which only
# bench/install_deps.sh installs), so they are named here.
targets=(//:callmeshd //:callmesh //services/greeter:greeter_server //bench/load:load_client
         //bench/async:async_load //bench/async:await_load //bench/brokers:rabbit_rpc //bench/brokers:nats_rpc
         //bench/journal:journal_bench //bench/brokers:rabbit_fanout //bench/brokers:nats_fanout
         //bench/pubsub:pubsub_bench)
$BAZEL build $BAZEL_FLAGS -c opt "${targets[@]}"
bin_dir=$($BAZEL info $BAZEL_FLAGS -c opt bazel-bin 2>/dev/null)
exec python3 bench/run.py --bin-dir="$bin_dir" "$@"

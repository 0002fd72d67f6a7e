#!/usr/bin/env bash
# Cluster mode's benchmarks (bench/README.md, "Cluster mode"): builds the optimized binaries, then
# runs bench/cluster/cluster_bench.py (see its --help; arguments are passed on). Not part of
# `make bench`: it starts three nats-servers and up to three sidecars and takes about 6 minutes.
#   bench/cluster/run.sh --quick
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v nats-server >/dev/null || ./tools/ci/install_deps.sh
BAZEL=${BAZEL:-bazel}
BAZEL_FLAGS=${BAZEL_FLAGS:-}
targets=(//:callmeshd //:callmesh //services/greeter:greeter_server //bench/load:load_client
         //bench/async:async_load)
$BAZEL build $BAZEL_FLAGS -c opt "${targets[@]}"
bin_dir=$($BAZEL info $BAZEL_FLAGS -c opt bazel-bin 2>/dev/null)
exec python3 bench/cluster/cluster_bench.py --bin-dir="$bin_dir" "$@"

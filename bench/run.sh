#!/usr/bin/env bash
# `make bench`: builds the optimized binaries and runs bench/run.py (see its --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bazel build -c opt //:callmeshd //services/greeter:greeter_server //bench/load:load_client
exec python3 bench/run.py "$@"

#!/usr/bin/env bash
# Installs the Debian packages the benchmarks need beyond `make deps` (tools/ci/install_deps.sh):
# brokers to compare against, their C client libraries, the chart plotter, h2load and perf.
# Idempotent: asks apt-get only for what is missing, and does nothing when all are present.
set -euo pipefail
packages=(rabbitmq-server librabbitmq-dev nats-server libnats-dev gnuplot-nox nghttp2-client
          linux-perf pkg-config)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "bench/install_deps.sh: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
# The broker packages start their daemons on install; the benchmarks start their own instances on
# loopback with private ports and data directories, so keep the system services from starting.
policy_added=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
trap '[ $policy_added -eq 1 ] && $sudo rm -f /usr/sbin/policy-rc.d' EXIT
$sudo apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

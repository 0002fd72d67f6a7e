// The sidecar process' own resources, read from /proc/self at each scrape, with the standard
// names of Prometheus' client libraries: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_start_time_seconds.
#pragma once

#include <optional>

#include "runtime/sidecar/metrics/metrics_registry.h"

namespace callmesh::metrics {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};

// The stats of this process; nullopt if /proc cannot be read (not Linux).
std::optional<ProcessStats> ReadProcessStats();

// Registers the process_* metrics in `registry`.
void AddProcessMetrics(Registry* registry);

}  // namespace callmesh::metrics

// The percentile the load generators of bench/ report: the value at rank p% of the ascending
// samples (nearest rank, rounded down), 0 for no samples. One rule, so that every client's p50
// and p99 mean the same thing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

namespace callmesh::bench {

// `sorted` ascending; `p` in percent (50, 99, 99.9).
inline double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p / 100.0 * sorted.size()));
  return sorted[index];
}

}  // namespace callmesh::bench

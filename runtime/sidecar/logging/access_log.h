// Access logs of synchronous calls (Invoke and the transparent proxy): one info line per sampled
// call with its cid, source, service, method, code and duration (see structured_log.h for the
// text and JSON forms). `access_log_sample_rate` in SidecarConfig: 0 = none, 1 = every call,
// 0.01 = about one call in a hundred, drawn at random per call. Thread-safe.
#pragma once

#include <cstdint>
#include <random>

#include "absl/synchronization/mutex.h"
#include "runtime/sidecar/logging/structured_log.h"

namespace callmesh::logging {

class AccessLog {
 public:
  // `sample_rate` in [0, 1]; `seed` makes the sampling repeatable in tests.
  AccessLog(double sample_rate, uint64_t seed);

  // Whether the next call is logged (a draw; true for rate 1, false for rate 0).
  bool Sampled();
  // Logs `fields` as an access-log line if the call is sampled.
  void Record(const LogFields& fields);
  // Logs `fields` as an access-log line (for a call sampled earlier).
  static void Write(const LogFields& fields);

 private:
  const double sample_rate_;
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::logging

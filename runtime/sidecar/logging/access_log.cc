#include "runtime/sidecar/logging/access_log.h"

namespace callmesh::logging {

AccessLog::AccessLog(double sample_rate, uint64_t seed)
    : sample_rate_(sample_rate), random_(seed) {}

bool AccessLog::Sampled() {
  if (sample_rate_ <= 0) return false;
  if (sample_rate_ >= 1) return true;
  absl::MutexLock lock(&mu_);
  return std::uniform_real_distribution<double>(0, 1)(random_) < sample_rate_;
}

void AccessLog::Record(const LogFields& fields) {
  if (Sampled()) Write(fields);
}

void AccessLog::Write(const LogFields& fields) { LogEvent(spdlog::level::info, fields, "access"); }

}  // namespace callmesh::logging

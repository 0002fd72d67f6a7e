// The sidecar's metrics: one Registry with the series the hot paths update resolved once, so an
// update is a relaxed atomic add with no lookup and no lock. What is cheaper to read when scraped
// (pending calls, in flight per target, watchers, instances by health, journal counters, the
// process) is registered by the wiring (`Sidecar`) as computed metrics on `registry()`.
//
// Metric names (all callmesh_* counters end in _total, durations are seconds):
//   callmesh_attempts_total{code}            attempts of async calls finished, by gRPC code
//   callmesh_retries_total{code}             attempts followed by a retry, by the attempt's code
//   callmesh_completions_total{state}        async calls finished, by terminal state
//   callmesh_journal_batch_size              mutations per journal write (histogram)
//   callmesh_journal_write_seconds{synced}   time of one journal write, fsync included when
//                                            synced="true" (histogram)
// Thread-safe.
#pragma once

#include <array>
#include <cstddef>

#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sidecar/metrics/metrics_registry.h"

namespace callmesh::metrics {

class SidecarMetrics {
 public:
  SidecarMetrics();
  SidecarMetrics(const SidecarMetrics&) = delete;
  SidecarMetrics& operator=(const SidecarMetrics&) = delete;

  Registry& registry() { return registry_; }
  const Registry& registry() const { return registry_; }

  // An attempt of an async call ended with gRPC status `code` (0..16; others count as UNKNOWN).
  void AttemptFinished(int code);
  // An attempt that ended with `code` will be retried.
  void RetryScheduled(int code);
  // An async call reached terminal `state`.
  void CallCompleted(v1::CallState state);
  // The journal wrote a batch of `mutations` in `took`, with an fsync if `synced`.
  void JournalBatchWritten(size_t mutations, absl::Duration took, bool synced);

 private:
  static constexpr int kCodes = 17;
  static constexpr int kStates = v1::CallState_ARRAYSIZE;

  Registry registry_;
  std::array<Counter*, kCodes> attempts_;
  std::array<Counter*, kCodes> retries_;
  std::array<Counter*, kStates> completions_;
  Histogram* batch_size_;
  Histogram* write_synced_;
  Histogram* write_unsynced_;
};

}  // namespace callmesh::metrics

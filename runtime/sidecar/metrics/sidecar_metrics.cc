#include "runtime/sidecar/metrics/sidecar_metrics.h"

#include "absl/status/status.h"
#include "runtime/sidecar/calls/call_states.h"

namespace callmesh::metrics {
namespace {

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

int ClampCode(int code) { return code >= 0 && code < 17 ? code : 2; /* UNKNOWN */ }

}  // namespace

SidecarMetrics::SidecarMetrics() {
  CounterFamily* attempts =
      registry_.AddCounter("callmesh_attempts_total",
                           "Attempts of async calls finished, by gRPC status code.", {"code"});
  CounterFamily* retries = registry_.AddCounter(
      "callmesh_retries_total",
      "Attempts of async calls that are retried, by the status code of the failed attempt.",
      {"code"});
  for (int code = 0; code < kCodes; ++code) {
    attempts_[code] = attempts->With({CodeName(code)});
    retries_[code] = retries->With({CodeName(code)});
  }
  CounterFamily* completions = registry_.AddCounter(
      "callmesh_completions_total", "Async calls finished, by terminal state.", {"state"});
  for (int state = 0; state < kStates; ++state) {
    const auto call_state = static_cast<v1::CallState>(state);
    completions_[state] =
        calls::IsTerminal(call_state) ? completions->With({calls::StateName(call_state)}) : nullptr;
  }
  batch_size_ = registry_
                    .AddHistogram("callmesh_journal_batch_size",
                                  "Mutations written to the journal in one batch (group commit).",
                                  {}, SizeBuckets())
                    ->With({});
  HistogramFamily* writes =
      registry_.AddHistogram("callmesh_journal_write_seconds",
                             "Time of one journal batch write; synced=\"true\" includes the fsync.",
                             {"synced"}, LatencyBuckets());
  write_synced_ = writes->With({"true"});
  write_unsynced_ = writes->With({"false"});
}

void SidecarMetrics::AttemptFinished(int code) { attempts_[ClampCode(code)]->Increment(); }

void SidecarMetrics::RetryScheduled(int code) { retries_[ClampCode(code)]->Increment(); }

void SidecarMetrics::CallCompleted(v1::CallState state) {
  const int index = static_cast<int>(state);
  if (index >= 0 && index < kStates && completions_[index] != nullptr) {
    completions_[index]->Increment();
  }
}

void SidecarMetrics::JournalBatchWritten(size_t mutations, absl::Duration took, bool synced) {
  batch_size_->Observe(static_cast<double>(mutations));
  (synced ? write_synced_ : write_unsynced_)->ObserveDuration(took);
}

}  // namespace callmesh::metrics

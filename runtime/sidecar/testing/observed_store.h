// A CallStore that forwards to another and lets a test wait for what the call lifecycle writes:
// AwaitCall blocks until a stored call satisfies a condition, woken by each write (no polling,
// no sleeps). It passes the CallStore conformance suite itself. Thread-safe; a wrapped store that
// it does not own must outlive it.
//
//   ObservedStore store(journal.get());
//   Dispatcher dispatcher(&store, ...);
//   absl::StatusOr<v1::Call> done = store.AwaitCall(cid, [](const v1::Call& c) {
//     return c.state() == v1::CALL_STATE_SUCCEEDED;
//   });
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/sidecar/store/call_store.h"

namespace callmesh::testing {

class ObservedStore final : public sidecar::CallStore {
 public:
  explicit ObservedStore(sidecar::CallStore* store) : store_(store) {}
  // Owning `store`.
  explicit ObservedStore(std::unique_ptr<sidecar::CallStore> store)
      : owned_(std::move(store)), store_(owned_.get()) {}

  // Waits until GetCall(cid) is OK and satisfies `condition`, re-reading after every write, for
  // at most `real_timeout` (a safety net for a broken test). Returns the last read.
  absl::StatusOr<v1::Call> AwaitCall(const std::string& cid,
                                     const std::function<bool(const v1::Call&)>& condition,
                                     absl::Duration real_timeout = absl::Seconds(60)) const;
  // Waits until the call is gone (GetCall is NOT_FOUND); true if it is.
  bool AwaitGone(const std::string& cid, absl::Duration real_timeout = absl::Seconds(60)) const;
  // Waits for the call to reach `state`.
  absl::StatusOr<v1::Call> AwaitState(const std::string& cid, v1::CallState state) const;
  // Waits for the call's callback delivery to reach `state`.
  absl::StatusOr<v1::Call> AwaitDelivery(const std::string& cid, v1::DeliveryState state) const;

  using CallStore::Accept;
  void Accept(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
              std::function<void(absl::StatusOr<AcceptResult>)> done) override;
  absl::StatusOr<AcceptResult> AcceptSync(v1::CallEnvelope envelope) override;
  absl::Status UpdateCall(const v1::Call& call) override;
  absl::StatusOr<v1::Completion> Complete(const std::string& cid, v1::Completion completion,
                                          v1::DeliveryState delivery) override;
  absl::Status SetDelivery(const std::string& cid, v1::DeliveryState state,
                           const v1::DeadLetter* dead_letter) override;
  absl::Status Delete(const std::string& cid) override;
  void UpdateCall(v1::Call call, std::function<void(absl::Status)> done) override;
  void Complete(std::string cid, v1::Completion completion, v1::DeliveryState delivery,
                std::function<void(absl::StatusOr<v1::Completion>)> done) override;
  void Delete(std::string cid, std::function<void(absl::Status)> done) override;
  void SetDelivery(std::string cid, v1::DeliveryState state,
                   std::optional<v1::DeadLetter> dead_letter,
                   std::function<void(absl::Status)> done) override;
  absl::StatusOr<v1::Call> GetCall(const std::string& cid) const override;
  absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> ListCalls(
      const ListFilter& filter, uint32_t page_size, const std::string& page_token) const override;
  absl::StatusOr<std::vector<v1::Completion>> CompletionsAfter(uint64_t after,
                                                               size_t limit) const override;
  uint64_t last_sequence() const override;
  absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> ListDeadLetters(
      uint32_t page_size, const std::string& page_token) const override;
  absl::Status ForEachUnfinished(const std::function<void(const v1::Call&)>& fn) const override;
  absl::StatusOr<size_t> Purge(absl::Time now, absl::Duration retention) override;
  size_t pending_count() const override;
  size_t dead_letter_count() const override;
  bool healthy() const override;
  Stats stats() const override;

 private:
  // Counts a write and wakes the waiters.
  void Wrote();
  // Re-reads the call after every write until `done` holds for the read, or `real_timeout`.
  absl::StatusOr<v1::Call> AwaitRead(
      const std::string& cid, const std::function<bool(const absl::StatusOr<v1::Call>&)>& done,
      absl::Duration real_timeout) const;

  const std::unique_ptr<sidecar::CallStore> owned_;
  sidecar::CallStore* const store_;
  mutable absl::Mutex mu_;
  uint64_t writes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace callmesh::testing

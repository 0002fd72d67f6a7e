#include "runtime/sidecar/testing/observed_store.h"

namespace callmesh::testing {

void ObservedStore::Wrote() {
  absl::MutexLock lock(&mu_);
  ++writes_;
}

absl::StatusOr<v1::Call> ObservedStore::AwaitCall(
    const std::string& cid, const std::function<bool(const v1::Call&)>& condition,
    absl::Duration real_timeout) const {
  return AwaitRead(
      cid, [&](const absl::StatusOr<v1::Call>& call) { return call.ok() && condition(*call); },
      real_timeout);
}

bool ObservedStore::AwaitGone(const std::string& cid, absl::Duration real_timeout) const {
  return absl::IsNotFound(
      AwaitRead(
          cid, [](const absl::StatusOr<v1::Call>& call) { return absl::IsNotFound(call.status()); },
          real_timeout)
          .status());
}

absl::StatusOr<v1::Call> ObservedStore::AwaitRead(
    const std::string& cid, const std::function<bool(const absl::StatusOr<v1::Call>&)>& done,
    absl::Duration real_timeout) const {
  const absl::Time give_up = absl::Now() + real_timeout;
  while (true) {
    uint64_t seen;
    {
      absl::MutexLock lock(&mu_);
      seen = writes_;
    }
    absl::StatusOr<v1::Call> call = store_->GetCall(cid);
    if (done(call)) return call;
    absl::MutexLock lock(&mu_);
    auto wrote = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return writes_ != seen; };
    if (!mu_.AwaitWithDeadline(absl::Condition(&wrote), give_up)) return call;
  }
}

absl::StatusOr<v1::Call> ObservedStore::AwaitState(const std::string& cid,
                                                   v1::CallState state) const {
  return AwaitCall(cid, [state](const v1::Call& call) { return call.state() == state; });
}

absl::StatusOr<v1::Call> ObservedStore::AwaitDelivery(const std::string& cid,
                                                      v1::DeliveryState state) const {
  return AwaitCall(cid,
                   [state](const v1::Call& call) { return call.callback_delivery() == state; });
}

void ObservedStore::Accept(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
                           std::function<void(absl::StatusOr<AcceptResult>)> done) {
  store_->Accept(std::move(envelope), first_attempt,
                 [this, done = std::move(done)](absl::StatusOr<AcceptResult> result) {
                   done(std::move(result));
                   Wrote();
                 });
}

absl::StatusOr<ObservedStore::AcceptResult> ObservedStore::AcceptSync(v1::CallEnvelope envelope) {
  auto result = store_->AcceptSync(std::move(envelope));
  Wrote();
  return result;
}

absl::Status ObservedStore::UpdateCall(const v1::Call& call) {
  absl::Status status = store_->UpdateCall(call);
  Wrote();
  return status;
}

absl::StatusOr<v1::Completion> ObservedStore::Complete(const std::string& cid,
                                                       v1::Completion completion,
                                                       v1::DeliveryState delivery) {
  auto result = store_->Complete(cid, std::move(completion), delivery);
  Wrote();
  return result;
}

absl::Status ObservedStore::SetDelivery(const std::string& cid, v1::DeliveryState state,
                                        const v1::DeadLetter* dead_letter) {
  absl::Status status = store_->SetDelivery(cid, state, dead_letter);
  Wrote();
  return status;
}

absl::Status ObservedStore::Delete(const std::string& cid) {
  absl::Status status = store_->Delete(cid);
  Wrote();
  return status;
}

void ObservedStore::UpdateCall(v1::Call call, std::function<void(absl::Status)> done) {
  store_->UpdateCall(std::move(call), [this, done = std::move(done)](absl::Status status) {
    done(std::move(status));
    Wrote();
  });
}

void ObservedStore::Complete(std::string cid, v1::Completion completion, v1::DeliveryState delivery,
                             std::function<void(absl::StatusOr<v1::Completion>)> done) {
  store_->Complete(std::move(cid), std::move(completion), delivery,
                   [this, done = std::move(done)](absl::StatusOr<v1::Completion> result) {
                     done(std::move(result));
                     Wrote();
                   });
}

void ObservedStore::Delete(std::string cid, std::function<void(absl::Status)> done) {
  store_->Delete(std::move(cid), [this, done = std::move(done)](absl::Status status) {
    done(std::move(status));
    Wrote();
  });
}

void ObservedStore::SetDelivery(std::string cid, v1::DeliveryState state,
                                std::optional<v1::DeadLetter> dead_letter,
                                std::function<void(absl::Status)> done) {
  store_->SetDelivery(std::move(cid), state, std::move(dead_letter),
                      [this, done = std::move(done)](absl::Status status) {
                        done(std::move(status));
                        Wrote();
                      });
}

absl::StatusOr<v1::Call> ObservedStore::GetCall(const std::string& cid) const {
  return store_->GetCall(cid);
}

absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> ObservedStore::ListCalls(
    const ListFilter& filter, uint32_t page_size, const std::string& page_token) const {
  return store_->ListCalls(filter, page_size, page_token);
}

absl::StatusOr<std::vector<v1::Completion>> ObservedStore::CompletionsAfter(uint64_t after,
                                                                            size_t limit) const {
  return store_->CompletionsAfter(after, limit);
}

uint64_t ObservedStore::last_sequence() const { return store_->last_sequence(); }

absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> ObservedStore::ListDeadLetters(
    uint32_t page_size, const std::string& page_token) const {
  return store_->ListDeadLetters(page_size, page_token);
}

absl::Status ObservedStore::ForEachUnfinished(
    const std::function<void(const v1::Call&)>& fn) const {
  return store_->ForEachUnfinished(fn);
}

absl::StatusOr<size_t> ObservedStore::Purge(absl::Time now, absl::Duration retention) {
  auto purged = store_->Purge(now, retention);
  Wrote();
  return purged;
}

size_t ObservedStore::pending_count() const { return store_->pending_count(); }
size_t ObservedStore::dead_letter_count() const { return store_->dead_letter_count(); }
bool ObservedStore::healthy() const { return store_->healthy(); }
ObservedStore::Stats ObservedStore::stats() const { return store_->stats(); }

}  // namespace callmesh::testing

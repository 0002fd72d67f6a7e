// The CallStore conformance tests: see call_store_conformance.h. Each test runs against every
// instantiated implementation, through the CallStore interface only.
#include "runtime/sidecar/store/call_store_conformance.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/store/store_testing.h"

namespace callmesh::sidecar {

const absl::Time CallStoreConformance::kEpoch = absl::FromUnixSeconds(1'800'000'000);

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

}  // namespace

void CallStoreConformance::SetUp() {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = absl::StrCat(test->test_suite_name(), ".", test->name());
  std::replace(name.begin(), name.end(), '/', '.');
  const fs::path dir = fs::path(::testing::TempDir()) / name / "store";
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  dir_ = dir.string();
  Reopen();
}

void CallStoreConformance::TearDown() { store_.reset(); }

void CallStoreConformance::Reopen() {
  store_.reset();
  absl::StatusOr<std::unique_ptr<CallStore>> store =
      GetParam().open(dir_, [this] { return Now(); });
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = std::move(*store);
}

absl::Time CallStoreConformance::Now() {
  absl::MutexLock lock(&clock_mu_);
  return now_;
}

void CallStoreConformance::Advance(absl::Duration d) {
  absl::MutexLock lock(&clock_mu_);
  now_ += d;
}

v1::CallEnvelope CallStoreConformance::Envelope(const std::string& service,
                                                const std::string& source, const std::string& key) {
  return TestEnvelope(cids_.Next(), Now(), service, source, key);
}

std::string CallStoreConformance::Accept(const std::string& service, const std::string& source,
                                         const std::string& key) {
  absl::StatusOr<CallStore::AcceptResult> accepted =
      store_->AcceptSync(Envelope(service, source, key));
  EXPECT_TRUE(accepted.ok()) << accepted.status();
  if (!accepted.ok()) return "";
  EXPECT_FALSE(accepted->deduplicated);
  return accepted->cid;
}

v1::Completion CallStoreConformance::Succeeded(const std::string& reply) {
  v1::Completion completion;
  completion.set_state(v1::CALL_STATE_SUCCEEDED);
  completion.set_reply(reply);
  completion.set_attempts(1);
  return completion;
}

v1::Completion CallStoreConformance::Complete(const std::string& cid, v1::DeliveryState delivery) {
  absl::StatusOr<v1::Completion> completion =
      store_->Complete(cid, Succeeded("reply of " + cid), delivery);
  EXPECT_TRUE(completion.ok()) << completion.status();
  return completion.ok() ? *completion : v1::Completion();
}

std::vector<std::string> CallStoreConformance::AllCids() { return sidecar::AllCids(*store_); }

namespace {

TEST_P(CallStoreConformance, AcceptThenGetRoundTrips) {
  v1::CallEnvelope envelope = Envelope();
  envelope.set_callback("billing");
  envelope.set_parent_cid("parent");
  absl::StatusOr<CallStore::AcceptResult> accepted = store_->AcceptSync(envelope);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->cid, envelope.cid());
  EXPECT_FALSE(accepted->deduplicated);

  absl::StatusOr<v1::Call> call = store_->GetCall(envelope.cid());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->envelope().SerializeAsString(), envelope.SerializeAsString());
  EXPECT_EQ(call->state(), v1::CALL_STATE_ACCEPTED);
  EXPECT_EQ(call->accepted_at().seconds(), envelope.accepted_at().seconds());
  EXPECT_EQ(call->callback(), "billing");
  EXPECT_EQ(call->attempts(), 0u);
  EXPECT_EQ(store_->pending_count(), 1u);
}

// Accept with a FirstAttempt writes what UpdateCall would before attempt 1, in the same write;
// a deduplicated accept writes nothing, also not the attempt.
TEST_P(CallStoreConformance, AcceptWithAFirstAttemptStoresTheCallRunningAttempt1) {
  const absl::Time started_at = Now() + absl::Milliseconds(3);
  const auto accept = [&](v1::CallEnvelope envelope) {
    absl::Notification done;
    absl::StatusOr<CallStore::AcceptResult> result;
    store_->Accept(std::move(envelope), CallStore::FirstAttempt{.started_at = started_at},
                   [&](absl::StatusOr<CallStore::AcceptResult> r) {
                     result = std::move(r);
                     done.Notify();
                   });
    done.WaitForNotification();
    return result;
  };
  v1::CallEnvelope envelope = Envelope("greeter", "app", "key-1");
  absl::StatusOr<CallStore::AcceptResult> accepted = accept(envelope);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_FALSE(accepted->deduplicated);
  absl::StatusOr<v1::Call> call = store_->GetCall(envelope.cid());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->envelope().SerializeAsString(), envelope.SerializeAsString());
  EXPECT_EQ(call->state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(call->attempts(), 1u);
  EXPECT_EQ(FromProtoTimestamp(call->started_at()), started_at);
  EXPECT_EQ(store_->pending_count(), 1u);

  v1::CallEnvelope again = Envelope("greeter", "app", "key-1");
  accepted = accept(again);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(accepted->deduplicated);
  EXPECT_EQ(accepted->cid, envelope.cid());
  EXPECT_EQ(store_->GetCall(again.cid()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCall(envelope.cid())->SerializeAsString(), call->SerializeAsString());
  EXPECT_EQ(store_->pending_count(), 1u);

  // It survives a restart as an unfinished call, so its next attempt there is number 2.
  Reopen();
  std::vector<v1::Call> unfinished;
  ASSERT_TRUE(store_->ForEachUnfinished([&](const v1::Call& c) { unfinished.push_back(c); }).ok());
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(unfinished[0].attempts(), 1u);
}

TEST_P(CallStoreConformance, AcceptFillsAcceptedAtFromTheClockWhenUnset) {
  v1::CallEnvelope envelope = Envelope();
  envelope.clear_accepted_at();
  ASSERT_TRUE(store_->AcceptSync(envelope).ok());
  absl::StatusOr<v1::Call> call = store_->GetCall(envelope.cid());
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->accepted_at().seconds(), absl::ToUnixSeconds(kEpoch));
  EXPECT_EQ(call->envelope().accepted_at().seconds(), absl::ToUnixSeconds(kEpoch));
}

TEST_P(CallStoreConformance, UnknownCidIsNotFoundNamingIt) {
  absl::StatusOr<v1::Call> call = store_->GetCall("0190f1d2-7a3b-7c4d-8e5f-0123456789ab");
  ASSERT_EQ(call.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(call.status().message(), "no call with CID 0190f1d2-7a3b-7c4d-8e5f-0123456789ab");
}

TEST_P(CallStoreConformance, AcceptRefusesAnEmptyOrReusedCid) {
  v1::CallEnvelope envelope = Envelope();
  envelope.clear_cid();
  EXPECT_EQ(store_->AcceptSync(envelope).status().code(), absl::StatusCode::kInvalidArgument);

  envelope = Envelope();
  ASSERT_TRUE(store_->AcceptSync(envelope).ok());
  envelope.set_payload("another payload");
  absl::StatusOr<CallStore::AcceptResult> again = store_->AcceptSync(envelope);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr(envelope.cid()));
  EXPECT_EQ(store_->GetCall(envelope.cid())->envelope().payload(),
            absl::StrCat("payload of ", envelope.cid()));
  EXPECT_EQ(store_->pending_count(), 1u);
}

TEST_P(CallStoreConformance, SameIdempotencyKeyReturnsTheFirstCidAndWritesNothing) {
  const std::string first = Accept("greeter", "app", "order-42");
  const CallStore::Stats before = store_->stats();

  v1::CallEnvelope again = Envelope("greeter", "app", "order-42");
  absl::StatusOr<CallStore::AcceptResult> result = store_->AcceptSync(again);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cid, first);
  EXPECT_TRUE(result->deduplicated);

  EXPECT_EQ(store_->stats().batches, before.batches) << "a deduplicated accept wrote a batch";
  EXPECT_EQ(store_->GetCall(again.cid()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AllCids(), std::vector<std::string>{first});
  EXPECT_EQ(store_->pending_count(), 1u);

  // Still deduplicated once the first call is terminal, and after a restart.
  Complete(first);
  Reopen();
  result = store_->AcceptSync(Envelope("greeter", "app", "order-42"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cid, first);
  EXPECT_TRUE(result->deduplicated);
  // Another key is another call.
  EXPECT_NE(Accept("greeter", "app", "order-43"), first);
}

TEST_P(CallStoreConformance, ConcurrentAcceptsAreAllStored) {
  constexpr int kThreads = 64;
  constexpr int kPerThread = 25;
  std::vector<std::vector<std::string>> accepted(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every fifth call carries an idempotency key of its own.
        const std::string key = i % 5 == 0 ? absl::StrCat("key-", t, "-", i) : "";
        absl::StatusOr<CallStore::AcceptResult> r =
            store_->AcceptSync(Envelope("greeter", "app", key));
        if (!r.ok() || r->deduplicated) {
          ++failures;
          continue;
        }
        accepted[t].push_back(r->cid);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(failures.load(), 0);

  const CallStore::Stats stats = store_->stats();
  EXPECT_EQ(stats.writes, uint64_t{kThreads * kPerThread});
  EXPECT_LE(stats.batches, stats.writes);
  EXPECT_GE(stats.largest_batch, 1u);
  EXPECT_EQ(store_->pending_count(), size_t{kThreads * kPerThread});

  Reopen();
  std::vector<std::string> want;
  for (const auto& cids : accepted) want.insert(want.end(), cids.begin(), cids.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(AllCids(), want);
  EXPECT_EQ(store_->pending_count(), size_t{kThreads * kPerThread});
}

TEST_P(CallStoreConformance, DestructorFinishesQueuedWrites) {
  constexpr int kCalls = 200;
  std::atomic<int> ok{0};
  std::vector<std::string> cids;
  for (int i = 0; i < kCalls; ++i) {
    v1::CallEnvelope envelope = Envelope();
    cids.push_back(envelope.cid());
    store_->Accept(std::move(envelope), [&](absl::StatusOr<CallStore::AcceptResult> r) {
      if (r.ok()) ++ok;
    });
  }
  store_.reset();  // close the store
  EXPECT_EQ(ok.load(), kCalls);
  Reopen();
  EXPECT_EQ(AllCids(), cids);
}

TEST_P(CallStoreConformance, BlockingMethodsFromADoneCallbackFailInsteadOfDeadlocking) {
  const std::string cid = Accept();
  absl::Notification done;
  absl::Status from_callback;
  store_->Accept(Envelope(), [&](absl::StatusOr<CallStore::AcceptResult>) {
    from_callback = store_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_NONE).status();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(from_callback.code(), absl::StatusCode::kFailedPrecondition) << from_callback;
  EXPECT_EQ(store_->GetCall(cid)->state(), v1::CALL_STATE_ACCEPTED);
}

// The forms that report to a callback make the same writes, report the same results, and may be
// called from a done callback (a caller chains a call's writes that way); each write is visible
// to reads once its `done` runs.
TEST_P(CallStoreConformance, WritesWithACallbackChainFromDoneCallbacks) {
  const std::string cast = Accept();
  absl::Notification done;
  absl::Status updated, deleted, delivered, refused, completed_again;
  absl::StatusOr<v1::Completion> completed;
  v1::Call seen_after_update;
  std::string cid;
  store_->Accept(Envelope(), [&](absl::StatusOr<CallStore::AcceptResult> accepted) {
    ASSERT_TRUE(accepted.ok()) << accepted.status();
    cid = accepted->cid;
    v1::Call running;
    running.mutable_envelope()->set_cid(cid);
    running.set_state(v1::CALL_STATE_RUNNING);
    running.set_attempts(1);
    store_->UpdateCall(running, [&](absl::Status status) {
      updated = status;
      seen_after_update = *store_->GetCall(cid);
      store_->Complete(cid, Succeeded("async reply"), v1::DELIVERY_STATE_PENDING,
                       [&](absl::StatusOr<v1::Completion> completion) {
                         completed = std::move(completion);
                         store_->Complete(cid, Succeeded("again"), v1::DELIVERY_STATE_NONE,
                                          [&](absl::StatusOr<v1::Completion> again) {
                                            completed_again = again.status();
                                            store_->Delete(cast, [&](absl::Status status) {
                                              deleted = status;
                                              store_->SetDelivery(cid, v1::DELIVERY_STATE_DELIVERED,
                                                                  std::nullopt,
                                                                  [&](absl::Status status) {
                                                                    delivered = status;
                                                                    done.Notify();
                                                                  });
                                            });
                                          });
                       });
    });
  });
  done.WaitForNotification();
  EXPECT_TRUE(updated.ok()) << updated;
  EXPECT_EQ(seen_after_update.state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(seen_after_update.attempts(), 1u);
  ASSERT_TRUE(completed.ok()) << completed.status();
  EXPECT_EQ(completed->reply(), "async reply");
  EXPECT_EQ(completed->service(), "greeter");
  EXPECT_EQ(completed_again.code(), absl::StatusCode::kFailedPrecondition) << completed_again;
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_TRUE(delivered.ok()) << delivered;
  EXPECT_EQ(store_->GetCall(cid)->callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(store_->GetCall(cid)->completion().SerializeAsString(), completed->SerializeAsString());
  EXPECT_EQ(store_->GetCall(cast).status().code(), absl::StatusCode::kNotFound);

  // Refused before anything is queued: reported at once, on this thread.
  v1::Call terminal_state;
  terminal_state.mutable_envelope()->set_cid(cid);
  terminal_state.set_state(v1::CALL_STATE_FAILED);
  store_->UpdateCall(terminal_state, [&](absl::Status status) { refused = status; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  store_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, std::nullopt,
                      [&](absl::Status status) { refused = status; });
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
}

TEST_P(CallStoreConformance, UpdateCallChangesMutableFieldsAndKeepsTheEnvelope) {
  const std::string cid = Accept();
  v1::Call running = *store_->GetCall(cid);
  running.mutable_envelope()->clear_payload();  // a payload-less copy, as ListCalls returns
  running.mutable_envelope()->set_service("tampered");
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(2);
  *running.mutable_started_at() = ToProtoTimestamp(kEpoch + absl::Seconds(1));
  running.set_last_status_code(14);
  running.set_last_status_message("connection refused");
  *running.mutable_next_attempt_at() = ToProtoTimestamp(kEpoch + absl::Seconds(3));
  running.set_callback("app-async-callback");
  ASSERT_TRUE(store_->UpdateCall(running).ok());

  v1::Call stored = *store_->GetCall(cid);
  EXPECT_EQ(stored.state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(stored.attempts(), 2u);
  EXPECT_EQ(stored.started_at().seconds(), absl::ToUnixSeconds(kEpoch) + 1);
  EXPECT_EQ(stored.last_status_code(), 14);
  EXPECT_EQ(stored.last_status_message(), "connection refused");
  EXPECT_EQ(stored.next_attempt_at().seconds(), absl::ToUnixSeconds(kEpoch) + 3);
  EXPECT_EQ(stored.callback(), "app-async-callback");
  EXPECT_EQ(stored.envelope().payload(), absl::StrCat("payload of ", cid));
  EXPECT_EQ(stored.envelope().service(), "greeter");
  EXPECT_EQ(store_->pending_count(), 1u);

  running.set_state(v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(store_->UpdateCall(running).code(), absl::StatusCode::kInvalidArgument);
  running.mutable_envelope()->set_cid("no-such-call");
  running.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(store_->UpdateCall(running).code(), absl::StatusCode::kNotFound);
}

TEST_P(CallStoreConformance, CompleteOnceThenTheOutcomeNeverChanges) {
  const std::string cid = Accept("greeter", "app", "k1");
  v1::Call running = *store_->GetCall(cid);
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(3);
  *running.mutable_started_at() = ToProtoTimestamp(kEpoch + absl::Seconds(1));
  ASSERT_TRUE(store_->UpdateCall(running).ok());

  v1::Completion outcome = Succeeded("the reply");
  outcome.clear_attempts();
  *outcome.mutable_completed_at() = ToProtoTimestamp(kEpoch + absl::Seconds(5));
  absl::StatusOr<v1::Completion> completion =
      store_->Complete(cid, outcome, v1::DELIVERY_STATE_PENDING);
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->cid(), cid);
  EXPECT_EQ(completion->state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(completion->reply(), "the reply");
  EXPECT_EQ(completion->service(), "greeter");
  EXPECT_EQ(completion->method(), "helloworld.Greeter/SayHello");
  EXPECT_EQ(completion->source(), "app");
  EXPECT_EQ(completion->idempotency_key(), "k1");
  EXPECT_EQ(completion->headers().at("x-tenant"), "blue");
  EXPECT_EQ(completion->attempts(), 3u);
  EXPECT_EQ(completion->started_at().seconds(), absl::ToUnixSeconds(kEpoch) + 1);
  EXPECT_EQ(completion->completed_at().seconds(), absl::ToUnixSeconds(kEpoch) + 5);
  EXPECT_EQ(completion->sequence(), 1u);
  EXPECT_EQ(store_->pending_count(), 0u);

  v1::Call stored = *store_->GetCall(cid);
  EXPECT_EQ(stored.state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(stored.callback_delivery(), v1::DELIVERY_STATE_PENDING);
  EXPECT_EQ(stored.completion().SerializeAsString(), completion->SerializeAsString());

  v1::Completion cancelled;
  cancelled.set_state(v1::CALL_STATE_CANCELLED);
  absl::StatusOr<v1::Completion> again = store_->Complete(cid, cancelled, v1::DELIVERY_STATE_NONE);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already SUCCEEDED (sequence 1)"));
  EXPECT_EQ(store_->GetCall(cid)->SerializeAsString(), stored.SerializeAsString());
  EXPECT_EQ(store_->last_sequence(), 1u);

  v1::Call late = stored;
  late.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(store_->UpdateCall(late).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetCall(cid)->SerializeAsString(), stored.SerializeAsString());
}

TEST_P(CallStoreConformance, CompleteRefusesBadArguments) {
  const std::string cid = Accept();
  v1::Completion running;
  running.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(store_->Complete(cid, running, v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::Completion other = Succeeded();
  other.set_cid("another");
  EXPECT_EQ(store_->Complete(cid, other, v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_DELIVERED).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::Completion> unknown =
      store_->Complete("nope", Succeeded(), v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "no call with CID nope");
  EXPECT_EQ(store_->last_sequence(), 0u);
  EXPECT_EQ(store_->GetCall(cid)->state(), v1::CALL_STATE_ACCEPTED);
}

TEST_P(CallStoreConformance, ConcurrentCompletesOfOneCallHaveOneWinner) {
  const std::string cid = Accept();
  constexpr int kThreads = 16;
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->Complete(cid, Succeeded(absl::StrCat("reply ", t)), v1::DELIVERY_STATE_NONE);
      if (r.ok()) ++won;
      if (r.status().code() == absl::StatusCode::kFailedPrecondition) ++refused;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(store_->last_sequence(), 1u);
}

TEST_P(CallStoreConformance, SequencesIncreaseAndCompletionsAfterResumes) {
  std::vector<std::string> order;
  for (int i = 0; i < 10; ++i) order.push_back(Accept());
  // Complete in an order other than acceptance.
  std::reverse(order.begin(), order.end());
  uint64_t previous = 0;
  for (const std::string& cid : order) {
    const uint64_t sequence = Complete(cid).sequence();
    EXPECT_GT(sequence, previous);
    previous = sequence;
  }
  EXPECT_EQ(store_->last_sequence(), previous);

  auto first = store_->CompletionsAfter(0, 4);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*first)[i].cid(), order[i]);
  auto rest = store_->CompletionsAfter(first->back().sequence(), 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ((*rest)[i].cid(), order[4 + i]);
    EXPECT_EQ((*rest)[i].reply(), "reply of " + order[4 + i]);
  }
  EXPECT_TRUE(store_->CompletionsAfter(previous, 100)->empty());
  EXPECT_TRUE(store_->CompletionsAfter(0, 0)->empty());
  EXPECT_TRUE(store_->CompletionsAfter(UINT64_MAX, 10)->empty());

  // Concurrent completions still get distinct, gap-free sequences.
  std::vector<std::string> more;
  for (int i = 0; i < 32; ++i) more.push_back(Accept());
  std::vector<std::thread> threads;
  for (const std::string& cid : more) threads.emplace_back([&, cid] { Complete(cid); });
  for (std::thread& thread : threads) thread.join();
  auto all = store_->CompletionsAfter(0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 42u);
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].sequence(), i + 1);
}

TEST_P(CallStoreConformance, ReopenPreservesEverything) {
  const std::string pending = Accept("greeter", "app", "k-pending");
  const std::string done = Accept("greeter", "app", "k-done");
  const std::string undelivered = Accept();
  const v1::Completion done_completion = Complete(done);
  Complete(undelivered, v1::DELIVERY_STATE_PENDING);
  const v1::Call before = *store_->GetCall(pending);
  ASSERT_EQ(store_->last_sequence(), 2u);

  Reopen();
  EXPECT_EQ(store_->last_sequence(), 2u);
  EXPECT_EQ(store_->pending_count(), 1u);
  EXPECT_EQ(store_->GetCall(pending)->SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(store_->GetCall(done)->completion().SerializeAsString(),
            done_completion.SerializeAsString());
  auto dedup = store_->AcceptSync(Envelope("greeter", "app", "k-done"));
  ASSERT_TRUE(dedup.ok());
  EXPECT_EQ(dedup->cid, done);
  EXPECT_TRUE(dedup->deduplicated);
  // The sequence goes on where it stopped.
  EXPECT_EQ(Complete(pending).sequence(), 3u);
  EXPECT_EQ(store_->pending_count(), 0u);
}

TEST_P(CallStoreConformance, ForEachUnfinishedReturnsPendingCallsAndUndeliveredCompletions) {
  const std::string accepted = Accept();
  const std::string running = Accept();
  v1::Call call = *store_->GetCall(running);
  call.set_state(v1::CALL_STATE_RUNNING);
  ASSERT_TRUE(store_->UpdateCall(call).ok());
  const std::string no_callback = Accept();
  Complete(no_callback, v1::DELIVERY_STATE_NONE);
  const std::string undelivered = Accept();
  Complete(undelivered, v1::DELIVERY_STATE_PENDING);
  const std::string delivered = Accept();
  Complete(delivered, v1::DELIVERY_STATE_PENDING);
  ASSERT_TRUE(store_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  const std::string dead = Accept();
  Complete(dead, v1::DELIVERY_STATE_PENDING);
  v1::DeadLetter letter;
  ASSERT_TRUE(store_->SetDelivery(dead, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  const std::string deleted = Accept();
  ASSERT_TRUE(store_->Delete(deleted).ok());

  Reopen();
  std::vector<std::string> seen;
  ASSERT_TRUE(store_
                  ->ForEachUnfinished([&](const v1::Call& c) {
                    seen.push_back(c.envelope().cid());
                    EXPECT_EQ(c.envelope().payload(), "payload of " + c.envelope().cid());
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{accepted, running, undelivered}));
  EXPECT_EQ(store_->pending_count(), 2u);
}

TEST_P(CallStoreConformance, ListCallsFiltersAndPaginates) {
  std::vector<std::string> greeter_from_app;
  std::vector<std::string> all;
  for (int i = 0; i < 25; ++i) {
    const std::string service = i % 2 == 0 ? "greeter" : "billing";
    const std::string source = i % 3 == 0 ? "cron" : "app";
    all.push_back(Accept(service, source));
    if (service == "greeter" && source == "app") greeter_from_app.push_back(all.back());
  }
  for (int i = 0; i < 25; i += 4) Complete(all[i]);

  // Unfiltered, pages of 10: 10 + 10 + 5, payloads cleared, newest first.
  std::reverse(all.begin(), all.end());
  std::reverse(greeter_from_app.begin(), greeter_from_app.end());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = store_->ListCalls({}, 10, token);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    for (const v1::Call& call : page->first) {
      EXPECT_TRUE(call.envelope().payload().empty());
      seen.push_back(call.envelope().cid());
    }
    token = page->second;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, all);

  // Filtered by service and source, pages of 2.
  seen.clear();
  CallStore::ListFilter filter;
  filter.service = "greeter";
  filter.source = "app";
  token.clear();
  do {
    auto page = store_->ListCalls(filter, 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->first.size(), 2u);
    for (const v1::Call& call : page->first) seen.push_back(call.envelope().cid());
    token = page->second;
  } while (!token.empty());
  EXPECT_EQ(seen, greeter_from_app);

  // By state.
  filter = {};
  filter.states = {v1::CALL_STATE_SUCCEEDED};
  auto succeeded = store_->ListCalls(filter, 0, "");
  ASSERT_TRUE(succeeded.ok());
  EXPECT_EQ(succeeded->first.size(), 7u);
  EXPECT_EQ(succeeded->second, "");
  for (const v1::Call& call : succeeded->first) {
    EXPECT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
    EXPECT_FALSE(call.completion().reply().empty());
  }
  filter.states = {v1::CALL_STATE_ACCEPTED, v1::CALL_STATE_RUNNING};
  EXPECT_EQ(store_->ListCalls(filter, 1000, "")->first.size(), 18u);

  // The page size is capped at 1000.
  for (int i = 0; i < 1010; ++i) store_->Accept(Envelope(), [](auto) {});
  Accept();
  auto big = store_->ListCalls({}, 5000, "");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->first.size(), 1000u);
  EXPECT_FALSE(big->second.empty());
}

TEST_P(CallStoreConformance, DeadLettersAreListedAndRemovedByRedrive) {
  std::vector<std::string> dead;
  for (int i = 0; i < 5; ++i) {
    dead.push_back(Accept());
    Complete(dead.back(), v1::DELIVERY_STATE_PENDING);
    v1::DeadLetter letter;
    letter.set_callback("app-async-callback");
    letter.set_delivery_attempts(5);
    letter.set_last_status_code(14);
    letter.set_last_status_message("unreachable");
    ASSERT_TRUE(store_->SetDelivery(dead.back(), v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
    EXPECT_EQ(store_->GetCall(dead.back())->callback_delivery(), v1::DELIVERY_STATE_DEAD_LETTERED);
  }

  auto page = store_->ListDeadLetters(3, "");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->first.size(), 3u);
  EXPECT_FALSE(page->second.empty());
  const v1::DeadLetter& first = page->first[0];
  EXPECT_EQ(first.completion().cid(), dead[0]);
  EXPECT_EQ(first.completion().reply(), "reply of " + dead[0]);
  EXPECT_EQ(first.callback(), "app-async-callback");
  EXPECT_EQ(first.delivery_attempts(), 5u);
  EXPECT_EQ(first.last_status_message(), "unreachable");
  EXPECT_EQ(first.dead_lettered_at().seconds(), absl::ToUnixSeconds(kEpoch));
  auto second = store_->ListDeadLetters(3, page->second);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->first.size(), 2u);
  EXPECT_EQ(second->first[1].completion().cid(), dead[4]);
  EXPECT_EQ(second->second, "");

  // Dead letters are not recovered as unfinished work...
  std::vector<std::string> unfinished;
  ASSERT_TRUE(
      store_
          ->ForEachUnfinished([&](const v1::Call& c) { unfinished.push_back(c.envelope().cid()); })
          .ok());
  EXPECT_TRUE(unfinished.empty());

  // ...until re-driven: back to PENDING, out of the list, recovered again.
  ASSERT_TRUE(store_->SetDelivery(dead[1], v1::DELIVERY_STATE_PENDING, nullptr).ok());
  ASSERT_TRUE(store_->SetDelivery(dead[3], v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  Reopen();
  auto left = store_->ListDeadLetters(0, "");
  ASSERT_TRUE(left.ok());
  std::vector<std::string> left_cids;
  for (const auto& letter : left->first) left_cids.push_back(letter.completion().cid());
  EXPECT_EQ(left_cids, (std::vector<std::string>{dead[0], dead[2], dead[4]}));
  ASSERT_TRUE(
      store_
          ->ForEachUnfinished([&](const v1::Call& c) { unfinished.push_back(c.envelope().cid()); })
          .ok());
  EXPECT_EQ(unfinished, std::vector<std::string>{dead[1]});
  EXPECT_EQ(store_->GetCall(dead[1])->callback_delivery(), v1::DELIVERY_STATE_PENDING);
}

TEST_P(CallStoreConformance, SetDeliveryRefusesImpossibleMoves) {
  const std::string open = Accept();
  EXPECT_EQ(store_->SetDelivery(open, v1::DELIVERY_STATE_DELIVERED, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetDelivery("nope", v1::DELIVERY_STATE_DELIVERED, nullptr).code(),
            absl::StatusCode::kNotFound);
  const std::string no_callback = Accept();
  Complete(no_callback, v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(store_->SetDelivery(no_callback, v1::DELIVERY_STATE_PENDING, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  const std::string delivered = Accept();
  Complete(delivered, v1::DELIVERY_STATE_PENDING);
  ASSERT_TRUE(store_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_TRUE(store_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_EQ(store_->SetDelivery(delivered, v1::DELIVERY_STATE_PENDING, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeadLetter letter;
  EXPECT_EQ(store_->SetDelivery(delivered, v1::DELIVERY_STATE_PENDING, &letter).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetDelivery(delivered, v1::DELIVERY_STATE_DEAD_LETTERED, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetDelivery(delivered, v1::DELIVERY_STATE_NONE, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetCall(delivered)->callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
}

TEST_P(CallStoreConformance, PurgeDeletesOnlyResultsWhoseRetentionRanOut) {
  const absl::Duration retention = absl::Hours(24);
  const std::string pending = Accept("greeter", "app", "k-pending");
  const std::string no_callback = Accept("greeter", "app", "k-none");
  Complete(no_callback, v1::DELIVERY_STATE_NONE);
  const std::string delivered_late = Accept("greeter", "app", "k-late");
  Complete(delivered_late, v1::DELIVERY_STATE_PENDING);
  const std::string undelivered = Accept();
  Complete(undelivered, v1::DELIVERY_STATE_PENDING);
  const std::string dead = Accept();
  Complete(dead, v1::DELIVERY_STATE_PENDING);
  v1::DeadLetter letter;
  ASSERT_TRUE(store_->SetDelivery(dead, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  const uint64_t last_sequence = store_->last_sequence();

  // Delivered 12 hours after completion: kept until 24 hours after delivery.
  Advance(absl::Hours(12));
  ASSERT_TRUE(store_->SetDelivery(delivered_late, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());

  auto purged = store_->Purge(kEpoch + absl::Hours(23), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 0u);

  purged = store_->Purge(kEpoch + absl::Hours(24), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(store_->GetCall(no_callback).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetCall(delivered_late).ok());

  purged = store_->Purge(kEpoch + absl::Hours(100), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(store_->GetCall(delivered_late).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetCall(pending).ok());
  EXPECT_TRUE(store_->GetCall(undelivered).ok());
  EXPECT_TRUE(store_->GetCall(dead).ok());
  EXPECT_EQ(store_->ListDeadLetters(0, "")->first.size(), 1u);
  EXPECT_EQ(*store_->Purge(kEpoch + absl::Hours(100), retention), 0u);

  // The purged completions left the log; the idempotency keys are free again.
  auto log = store_->CompletionsAfter(0, 100);
  ASSERT_TRUE(log.ok());
  std::set<std::string> logged;
  for (const auto& completion : *log) logged.insert(completion.cid());
  EXPECT_EQ(logged, (std::set<std::string>{undelivered, dead}));
  const std::string reused = Accept("greeter", "app", "k-none");
  EXPECT_NE(reused, no_callback);
  EXPECT_EQ(store_->AcceptSync(Envelope("greeter", "app", "k-pending"))->cid, pending);

  // A sequence is never handed out twice, even once its log entry is purged.
  Reopen();
  EXPECT_EQ(store_->last_sequence(), last_sequence);
  EXPECT_EQ(Complete(reused).sequence(), last_sequence + 1);

  EXPECT_EQ(store_->Purge(kEpoch, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(CallStoreConformance, PurgeHandlesManyCallsInChunks) {
  std::vector<std::string> cids;
  for (int i = 0; i < 600; ++i) {
    v1::CallEnvelope envelope = Envelope();
    cids.push_back(envelope.cid());
    store_->Accept(std::move(envelope), [](auto) {});
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < cids.size(); i += 8) Complete(cids[i]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto purged = store_->Purge(kEpoch + absl::Hours(2), absl::Hours(1));
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 600u);
  EXPECT_TRUE(AllCids().empty());
  EXPECT_TRUE(store_->CompletionsAfter(0, 1000)->empty());
}

TEST_P(CallStoreConformance, DeleteRemovesACallButKeepsItsIdempotencyKeyForTheRetention) {
  const std::string cast = Accept("greeter", "app", "cast-key");
  ASSERT_TRUE(store_->Delete(cast).ok());
  EXPECT_EQ(store_->GetCall(cast).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->pending_count(), 0u);
  EXPECT_EQ(store_->Delete(cast).code(), absl::StatusCode::kNotFound);

  // A retried cast with the same key gets the first CID back and is not journaled again, also
  // after a restart, until the retention that started at the delete has run out.
  auto expect_deduplicated = [&] {
    absl::StatusOr<CallStore::AcceptResult> again =
        store_->AcceptSync(Envelope("greeter", "app", "cast-key"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->cid, cast);
    EXPECT_EQ(store_->pending_count(), 0u);
  };
  expect_deduplicated();
  Reopen();
  expect_deduplicated();
  EXPECT_EQ(*store_->Purge(kEpoch + absl::Hours(1) - absl::Seconds(1), absl::Hours(1)), 0u);
  expect_deduplicated();
  EXPECT_EQ(*store_->Purge(kEpoch + absl::Hours(1), absl::Hours(1)), 0u);
  EXPECT_NE(Accept("greeter", "app", "cast-key"), cast);  // key released with the retention

  const std::string done = Accept();
  Complete(done);
  ASSERT_TRUE(store_->Delete(done).ok());
  EXPECT_TRUE(store_->CompletionsAfter(0, 10)->empty());
  EXPECT_EQ(*store_->Purge(kEpoch + absl::Hours(48), absl::Hours(1)), 0u);

  Reopen();
  EXPECT_EQ(store_->pending_count(), 1u);
}

TEST_P(CallStoreConformance, ConcurrentAcceptsWithOneIdempotencyKeyMakeOneCall) {
  constexpr int kThreads = 16;
  std::vector<absl::StatusOr<CallStore::AcceptResult>> results(kThreads);
  std::vector<std::string> offered(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    v1::CallEnvelope envelope = Envelope("greeter", "app", "the-one-key");
    offered[t] = envelope.cid();
    threads.emplace_back(
        [&, t, envelope]() mutable { results[t] = store_->AcceptSync(std::move(envelope)); });
  }
  for (std::thread& thread : threads) thread.join();
  int fresh = 0;
  std::set<std::string> cids;
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_TRUE(results[t].ok()) << results[t].status();
    cids.insert(results[t]->cid);
    if (!results[t]->deduplicated) {
      ++fresh;
      EXPECT_EQ(results[t]->cid, offered[t]);
    }
  }
  EXPECT_EQ(fresh, 1);
  ASSERT_EQ(cids.size(), 1u);
  EXPECT_EQ(AllCids(), std::vector<std::string>{*cids.begin()});
  EXPECT_EQ(store_->pending_count(), 1u);
}

TEST_P(CallStoreConformance, CompleteFillsWhatIsUnsetFromTheCallAndTheClock) {
  const std::string cid = Accept();
  v1::Call running = *store_->GetCall(cid);
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(4);
  *running.mutable_started_at() = ToProtoTimestamp(kEpoch + absl::Seconds(2));
  *running.mutable_next_attempt_at() = ToProtoTimestamp(kEpoch + absl::Seconds(9));
  ASSERT_TRUE(store_->UpdateCall(running).ok());
  Advance(absl::Seconds(7));

  v1::Completion failed;
  failed.set_state(v1::CALL_STATE_FAILED);
  failed.set_status_code(14);
  failed.set_status_message("unreachable");
  absl::StatusOr<v1::Completion> completion =
      store_->Complete(cid, failed, v1::DELIVERY_STATE_NONE);
  ASSERT_TRUE(completion.ok()) << completion.status();
  EXPECT_EQ(completion->attempts(), 4u);
  EXPECT_EQ(completion->started_at().seconds(), absl::ToUnixSeconds(kEpoch) + 2);
  EXPECT_EQ(completion->completed_at().seconds(), absl::ToUnixSeconds(kEpoch) + 7);
  EXPECT_EQ(completion->accepted_at().seconds(), absl::ToUnixSeconds(kEpoch));
  EXPECT_EQ(completion->status_code(), 14);
  EXPECT_EQ(completion->status_message(), "unreachable");

  const v1::Call stored = *store_->GetCall(cid);
  EXPECT_EQ(stored.state(), v1::CALL_STATE_FAILED);
  EXPECT_EQ(stored.attempts(), 4u);
  EXPECT_EQ(stored.completed_at().seconds(), absl::ToUnixSeconds(kEpoch) + 7);
  EXPECT_FALSE(stored.has_next_attempt_at());
  EXPECT_EQ(stored.callback_delivery(), v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(store_->pending_count(), 0u);
}

TEST_P(CallStoreConformance, DeadLetterIsFilledFromTheCallAndTheClock) {
  v1::CallEnvelope envelope = Envelope();
  envelope.set_callback("billing");
  const std::string cid = envelope.cid();
  ASSERT_TRUE(store_->AcceptSync(envelope).ok());
  const v1::Completion completion = Complete(cid, v1::DELIVERY_STATE_PENDING);
  Advance(absl::Minutes(3));
  v1::DeadLetter letter;
  letter.set_delivery_attempts(2);
  ASSERT_TRUE(store_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());

  auto letters = store_->ListDeadLetters(0, "");
  ASSERT_TRUE(letters.ok()) << letters.status();
  ASSERT_EQ(letters->first.size(), 1u);
  const v1::DeadLetter& stored = letters->first[0];
  EXPECT_EQ(stored.completion().SerializeAsString(), completion.SerializeAsString());
  EXPECT_EQ(stored.callback(), "billing");
  EXPECT_EQ(stored.delivery_attempts(), 2u);
  EXPECT_EQ(stored.dead_lettered_at().seconds(), absl::ToUnixSeconds(kEpoch + absl::Minutes(3)));

  // Dead-lettering again replaces the letter; a letter for another call is refused.
  letter.set_delivery_attempts(7);
  ASSERT_TRUE(store_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  EXPECT_EQ(store_->ListDeadLetters(0, "")->first.at(0).delivery_attempts(), 7u);
  letter.mutable_completion()->set_cid("another");
  EXPECT_EQ(store_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->ListDeadLetters(0, "")->first.size(), 1u);
}

TEST_P(CallStoreConformance, EveryWriteSurvivesAReopen) {
  // The bookkeeping writes too: not synced, but written before they return.
  const std::string running = Accept();
  v1::Call call = *store_->GetCall(running);
  call.set_state(v1::CALL_STATE_RUNNING);
  call.set_attempts(2);
  ASSERT_TRUE(store_->UpdateCall(call).ok());
  const std::string delivered = Accept();
  Complete(delivered, v1::DELIVERY_STATE_PENDING);
  const std::string deleted = Accept();
  ASSERT_TRUE(store_->Delete(deleted).ok());
  const std::string purged = Accept();
  Complete(purged);
  Advance(absl::Hours(1));
  ASSERT_TRUE(store_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  ASSERT_EQ(*store_->Purge(Now(), absl::Minutes(30)), 1u);

  Reopen();
  EXPECT_EQ(store_->GetCall(running)->attempts(), 2u);
  EXPECT_EQ(store_->GetCall(running)->state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(store_->GetCall(delivered)->callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
  EXPECT_EQ(store_->GetCall(deleted).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCall(purged).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AllCids(), (std::vector<std::string>{running, delivered}));
  EXPECT_EQ(store_->pending_count(), 1u);
  EXPECT_TRUE(store_->healthy());
}

TEST_P(CallStoreConformance, EmptyCidIsInvalidArgumentEverywhere) {
  v1::Call call;
  call.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(store_->UpdateCall(call).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Complete("", Succeeded(), v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetDelivery("", v1::DELIVERY_STATE_DELIVERED, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Delete("").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(AllCids().empty());
  EXPECT_EQ(store_->last_sequence(), 0u);
}

TEST_P(CallStoreConformance, CountsDeadLettersAndDeliveries) {
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) {
    cids.push_back(Accept());
    Complete(cids.back(), v1::DELIVERY_STATE_PENDING);
  }
  v1::DeadLetter letter;
  ASSERT_TRUE(store_->SetDelivery(cids[0], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(store_->SetDelivery(cids[1], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(store_->SetDelivery(cids[1], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(store_->SetDelivery(cids[2], v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_EQ(store_->dead_letter_count(), 2u);
  EXPECT_EQ(store_->stats().deliveries, 1u);

  ASSERT_TRUE(store_->SetDelivery(cids[0], v1::DELIVERY_STATE_PENDING, nullptr).ok());  // redrive
  EXPECT_EQ(store_->dead_letter_count(), 1u);
  Reopen();
  EXPECT_EQ(store_->dead_letter_count(), 1u);
  EXPECT_EQ(store_->stats().deliveries, 0u);  // since Open
  ASSERT_TRUE(store_->Delete(cids[1]).ok());
  EXPECT_EQ(store_->dead_letter_count(), 0u);
  EXPECT_EQ(store_->ListDeadLetters(0, "")->first.size(), 0u);
}

TEST_P(CallStoreConformance, ListPagesAreBoundedByBytes) {
  // Three calls whose replies together exceed kMaxListPageBytes: a page stops after the call that
  // crossed the bound, so every page fits in a gRPC message however large the results.
  const std::string big_reply(kMaxListPageBytes * 2 / 3, 'r');
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) {
    cids.push_back(Accept());
    ASSERT_TRUE(store_->Complete(cids.back(), Succeeded(big_reply), v1::DELIVERY_STATE_NONE).ok());
  }
  auto first = store_->ListCalls({}, 100, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->first.size(), 2u);
  EXPECT_EQ(first->first[0].completion().reply(), big_reply);
  ASSERT_FALSE(first->second.empty());
  auto second = store_->ListCalls({}, 100, first->second);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->first.size(), 1u);
  EXPECT_EQ(second->first[0].envelope().cid(), cids[0]);
  EXPECT_TRUE(second->second.empty());
}

TEST_P(CallStoreConformance, ListsRefuseAPageTokenTheyDidNotReturn) {
  Accept();
  for (const std::string token : {"garbage!!", "01a20a15-c864-7065-a718"}) {
    auto calls = store_->ListCalls({}, 10, token);
    EXPECT_EQ(calls.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(calls.status().message(), HasSubstr("page_token"));
    EXPECT_EQ(store_->ListDeadLetters(10, token).status().code(),
              absl::StatusCode::kInvalidArgument)
        << token;
  }
}

}  // namespace
}  // namespace callmesh::sidecar

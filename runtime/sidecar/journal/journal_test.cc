// Tests of the call journal against a real RocksDB in a fresh folder under $TEST_TMPDIR. In the
// manner of LevelDB's log and fault-injection tests: write, close, damage the files or the disk,
// reopen, and check that everything acknowledged is there — or that the journal refuses to open.
#include "runtime/sidecar/journal/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "runtime/common/cid.h"
#include "runtime/sidecar/journal/fault_injection_file_system.h"
#include "runtime/sidecar/journal/journal_keys.h"

namespace callmesh::sidecar {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

google::protobuf::Timestamp At(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  ts.set_nanos(
      static_cast<int32_t>((t - absl::FromUnixSeconds(ts.seconds())) / absl::Nanoseconds(1)));
  return ts;
}

const absl::Time kEpoch = absl::FromUnixSeconds(1'800'000'000);

// A fresh, empty folder per test.
std::string FreshDir(const std::string& name) {
  const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir = fs::path(::testing::TempDir()) /
                       absl::StrCat(test->test_suite_name(), ".", test->name()) / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir.string();
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir("journal");
    Reopen();
  }

  JournalOptions Options() {
    JournalOptions options;
    options.dir = dir_;
    options.clock = [this] {
      absl::MutexLock lock(&clock_mu_);
      return now_;
    };
    return options;
  }

  void Reopen() {
    journal_.reset();
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(Options());
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }

  void Close() { journal_.reset(); }

  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }
  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }

  v1::CallEnvelope Envelope(const std::string& service = "greeter",
                            const std::string& source = "app", const std::string& key = "") {
    v1::CallEnvelope envelope;
    envelope.set_cid(cids_.Next());
    envelope.set_kind(v1::CALL_KIND_INVOKE_ASYNC);
    envelope.set_service(service);
    envelope.set_method("helloworld.Greeter/SayHello");
    envelope.set_payload(absl::StrCat("payload of ", envelope.cid()));
    envelope.set_source(source);
    envelope.set_idempotency_key(key);
    (*envelope.mutable_headers())["x-tenant"] = "blue";
    *envelope.mutable_accepted_at() = At(Now());
    return envelope;
  }

  // Accepts a new call and returns its CID.
  std::string Accept(const std::string& service = "greeter", const std::string& source = "app",
                     const std::string& key = "") {
    absl::StatusOr<Journal::AcceptResult> accepted =
        journal_->AcceptSync(Envelope(service, source, key));
    EXPECT_TRUE(accepted.ok()) << accepted.status();
    EXPECT_FALSE(accepted->deduplicated);
    return accepted->cid;
  }

  v1::Completion Succeeded(const std::string& reply = "reply") {
    v1::Completion completion;
    completion.set_state(v1::CALL_STATE_SUCCEEDED);
    completion.set_reply(reply);
    completion.set_attempts(1);
    return completion;
  }

  // Completes `cid` and returns the stored completion.
  v1::Completion Complete(const std::string& cid,
                          v1::DeliveryState delivery = v1::DELIVERY_STATE_NONE) {
    absl::StatusOr<v1::Completion> completion =
        journal_->Complete(cid, Succeeded("reply of " + cid), delivery);
    EXPECT_TRUE(completion.ok()) << completion.status();
    return completion.ok() ? *completion : v1::Completion();
  }

  // Every CID in the journal, in CID (acceptance) order.
  std::vector<std::string> AllCids() {
    std::vector<std::string> cids;
    std::string token;
    do {
      auto page = journal_->ListCalls({}, 1000, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const v1::Call& call : page->first) cids.push_back(call.envelope().cid());
      token = page->second;
    } while (!token.empty());
    std::sort(cids.begin(), cids.end());  // listed newest first; tests compare in CID order
    return cids;
  }

  std::string dir_;
  CidGenerator cids_;
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = kEpoch;
  std::unique_ptr<Journal> journal_;
};

// --- Accept, idempotency, group commit ---------------------------------------------------------

TEST_F(JournalTest, AcceptThenGetRoundTrips) {
  v1::CallEnvelope envelope = Envelope();
  envelope.set_callback("billing");
  envelope.set_parent_cid("parent");
  absl::StatusOr<Journal::AcceptResult> accepted = journal_->AcceptSync(envelope);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_EQ(accepted->cid, envelope.cid());
  EXPECT_FALSE(accepted->deduplicated);

  absl::StatusOr<v1::Call> call = journal_->GetCall(envelope.cid());
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->envelope().SerializeAsString(), envelope.SerializeAsString());
  EXPECT_EQ(call->state(), v1::CALL_STATE_ACCEPTED);
  EXPECT_EQ(call->accepted_at().seconds(), envelope.accepted_at().seconds());
  EXPECT_EQ(call->callback(), "billing");
  EXPECT_EQ(call->attempts(), 0u);
  EXPECT_EQ(journal_->pending_count(), 1u);
}

TEST_F(JournalTest, AcceptFillsAcceptedAtFromTheClockWhenUnset) {
  v1::CallEnvelope envelope = Envelope();
  envelope.clear_accepted_at();
  ASSERT_TRUE(journal_->AcceptSync(envelope).ok());
  absl::StatusOr<v1::Call> call = journal_->GetCall(envelope.cid());
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->accepted_at().seconds(), absl::ToUnixSeconds(kEpoch));
  EXPECT_EQ(call->envelope().accepted_at().seconds(), absl::ToUnixSeconds(kEpoch));
}

TEST_F(JournalTest, UnknownCidIsNotFoundNamingIt) {
  absl::StatusOr<v1::Call> call = journal_->GetCall("0190f1d2-7a3b-7c4d-8e5f-0123456789ab");
  ASSERT_EQ(call.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(call.status().message(), "no call with CID 0190f1d2-7a3b-7c4d-8e5f-0123456789ab");
}

TEST_F(JournalTest, AcceptRefusesAnEmptyOrReusedCid) {
  v1::CallEnvelope envelope = Envelope();
  envelope.clear_cid();
  EXPECT_EQ(journal_->AcceptSync(envelope).status().code(), absl::StatusCode::kInvalidArgument);

  envelope = Envelope();
  ASSERT_TRUE(journal_->AcceptSync(envelope).ok());
  envelope.set_payload("another payload");
  absl::StatusOr<Journal::AcceptResult> again = journal_->AcceptSync(envelope);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr(envelope.cid()));
  EXPECT_EQ(journal_->GetCall(envelope.cid())->envelope().payload(),
            absl::StrCat("payload of ", envelope.cid()));
  EXPECT_EQ(journal_->pending_count(), 1u);
}

TEST_F(JournalTest, SameIdempotencyKeyReturnsTheFirstCidAndWritesNothing) {
  const std::string first = Accept("greeter", "app", "order-42");
  const Journal::Stats before = journal_->stats();

  v1::CallEnvelope again = Envelope("greeter", "app", "order-42");
  absl::StatusOr<Journal::AcceptResult> result = journal_->AcceptSync(again);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cid, first);
  EXPECT_TRUE(result->deduplicated);

  EXPECT_EQ(journal_->stats().batches, before.batches) << "a deduplicated accept wrote a batch";
  EXPECT_EQ(journal_->GetCall(again.cid()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AllCids(), std::vector<std::string>{first});
  EXPECT_EQ(journal_->pending_count(), 1u);

  // Still deduplicated once the first call is terminal, and after a restart.
  Complete(first);
  Reopen();
  result = journal_->AcceptSync(Envelope("greeter", "app", "order-42"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->cid, first);
  EXPECT_TRUE(result->deduplicated);
  // Another key is another call.
  EXPECT_NE(Accept("greeter", "app", "order-43"), first);
}

TEST_F(JournalTest, SameIdempotencyKeyTwiceInOneBatchIsDeduplicated) {
  // Hold the writer inside the sync of a first batch, queue two accepts with the same key, then
  // let it go: they form the next batch together.
  auto file_system = std::make_shared<FaultInjectionFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(file_system);
  Close();
  JournalOptions options = Options();
  options.env = env.get();
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  journal_ = std::move(*journal);

  const Journal::Stats before = journal_->stats();
  file_system->HoldWalSyncs(true);
  absl::Notification first_done;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> r) {
    EXPECT_TRUE(r.ok()) << r.status();
    first_done.Notify();
  });
  file_system->WaitForHeldSync();

  v1::CallEnvelope a = Envelope("greeter", "app", "same-key");
  v1::CallEnvelope b = Envelope("greeter", "app", "same-key");
  std::vector<absl::StatusOr<Journal::AcceptResult>> results(2);
  absl::Notification a_done, b_done;
  journal_->Accept(a, [&](absl::StatusOr<Journal::AcceptResult> r) {
    results[0] = std::move(r);
    a_done.Notify();
  });
  journal_->Accept(b, [&](absl::StatusOr<Journal::AcceptResult> r) {
    results[1] = std::move(r);
    b_done.Notify();
  });
  file_system->HoldWalSyncs(false);
  first_done.WaitForNotification();
  a_done.WaitForNotification();
  b_done.WaitForNotification();

  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_EQ(results[0]->cid, a.cid());
  EXPECT_FALSE(results[0]->deduplicated);
  EXPECT_EQ(results[1]->cid, a.cid());
  EXPECT_TRUE(results[1]->deduplicated);
  const Journal::Stats after = journal_->stats();
  // The held first batch, then one batch with both accepts.
  EXPECT_EQ(after.writes - before.writes, 3u);
  EXPECT_EQ(after.batches - before.batches, 2u) << "the two accepts were not one batch";
  EXPECT_EQ(journal_->GetCall(b.cid()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(journal_->pending_count(), 2u);
  journal_.reset();  // before `env`
}

TEST_F(JournalTest, ConcurrentAcceptsAreAllDurableAndShareBatches) {
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
        absl::StatusOr<Journal::AcceptResult> r =
            journal_->AcceptSync(Envelope("greeter", "app", key));
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

  const Journal::Stats stats = journal_->stats();
  EXPECT_EQ(stats.writes, uint64_t{kThreads * kPerThread});
  EXPECT_LT(stats.batches, stats.writes);
  EXPECT_EQ(stats.syncs, stats.batches);
  EXPECT_GT(stats.largest_batch, 1u);
  EXPECT_EQ(journal_->pending_count(), size_t{kThreads * kPerThread});

  Reopen();
  std::vector<std::string> want;
  for (const auto& cids : accepted) want.insert(want.end(), cids.begin(), cids.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(AllCids(), want);
  EXPECT_EQ(journal_->pending_count(), size_t{kThreads * kPerThread});
}

TEST_F(JournalTest, DestructorFinishesQueuedWrites) {
  constexpr int kCalls = 200;
  std::atomic<int> ok{0};
  std::vector<std::string> cids;
  for (int i = 0; i < kCalls; ++i) {
    v1::CallEnvelope envelope = Envelope();
    cids.push_back(envelope.cid());
    journal_->Accept(std::move(envelope), [&](absl::StatusOr<Journal::AcceptResult> r) {
      if (r.ok()) ++ok;
    });
  }
  Close();
  EXPECT_EQ(ok.load(), kCalls);
  Reopen();
  EXPECT_EQ(AllCids(), cids);
}

TEST_F(JournalTest, BlockingMethodsFromADoneCallbackFailInsteadOfDeadlocking) {
  const std::string cid = Accept();
  absl::Notification done;
  absl::Status from_callback;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult>) {
    from_callback = journal_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_NONE).status();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(from_callback.code(), absl::StatusCode::kFailedPrecondition) << from_callback;
  EXPECT_EQ(journal_->GetCall(cid)->state(), v1::CALL_STATE_ACCEPTED);
}

// --- Updates and the one terminal outcome ------------------------------------------------------

TEST_F(JournalTest, UpdateCallChangesMutableFieldsAndKeepsTheEnvelope) {
  const std::string cid = Accept();
  v1::Call running = *journal_->GetCall(cid);
  running.mutable_envelope()->clear_payload();  // a payload-less copy, as ListCalls returns
  running.mutable_envelope()->set_service("tampered");
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(2);
  *running.mutable_started_at() = At(kEpoch + absl::Seconds(1));
  running.set_last_status_code(14);
  running.set_last_status_message("connection refused");
  *running.mutable_next_attempt_at() = At(kEpoch + absl::Seconds(3));
  running.set_callback("app-async-callback");
  ASSERT_TRUE(journal_->UpdateCall(running).ok());

  v1::Call stored = *journal_->GetCall(cid);
  EXPECT_EQ(stored.state(), v1::CALL_STATE_RUNNING);
  EXPECT_EQ(stored.attempts(), 2u);
  EXPECT_EQ(stored.started_at().seconds(), absl::ToUnixSeconds(kEpoch) + 1);
  EXPECT_EQ(stored.last_status_code(), 14);
  EXPECT_EQ(stored.last_status_message(), "connection refused");
  EXPECT_EQ(stored.next_attempt_at().seconds(), absl::ToUnixSeconds(kEpoch) + 3);
  EXPECT_EQ(stored.callback(), "app-async-callback");
  EXPECT_EQ(stored.envelope().payload(), absl::StrCat("payload of ", cid));
  EXPECT_EQ(stored.envelope().service(), "greeter");
  EXPECT_EQ(journal_->pending_count(), 1u);

  running.set_state(v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(journal_->UpdateCall(running).code(), absl::StatusCode::kInvalidArgument);
  running.mutable_envelope()->set_cid("no-such-call");
  running.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(journal_->UpdateCall(running).code(), absl::StatusCode::kNotFound);
}

TEST_F(JournalTest, CompleteOnceThenTheOutcomeNeverChanges) {
  const std::string cid = Accept("greeter", "app", "k1");
  v1::Call running = *journal_->GetCall(cid);
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(3);
  *running.mutable_started_at() = At(kEpoch + absl::Seconds(1));
  ASSERT_TRUE(journal_->UpdateCall(running).ok());

  v1::Completion outcome = Succeeded("the reply");
  outcome.clear_attempts();
  *outcome.mutable_completed_at() = At(kEpoch + absl::Seconds(5));
  absl::StatusOr<v1::Completion> completion =
      journal_->Complete(cid, outcome, v1::DELIVERY_STATE_PENDING);
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
  EXPECT_EQ(journal_->pending_count(), 0u);

  v1::Call stored = *journal_->GetCall(cid);
  EXPECT_EQ(stored.state(), v1::CALL_STATE_SUCCEEDED);
  EXPECT_EQ(stored.callback_delivery(), v1::DELIVERY_STATE_PENDING);
  EXPECT_EQ(stored.completion().SerializeAsString(), completion->SerializeAsString());

  v1::Completion cancelled;
  cancelled.set_state(v1::CALL_STATE_CANCELLED);
  absl::StatusOr<v1::Completion> again =
      journal_->Complete(cid, cancelled, v1::DELIVERY_STATE_NONE);
  ASSERT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("already SUCCEEDED (sequence 1)"));
  EXPECT_EQ(journal_->GetCall(cid)->SerializeAsString(), stored.SerializeAsString());
  EXPECT_EQ(journal_->last_sequence(), 1u);

  v1::Call late = stored;
  late.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(journal_->UpdateCall(late).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(journal_->GetCall(cid)->SerializeAsString(), stored.SerializeAsString());
}

TEST_F(JournalTest, CompleteRefusesBadArguments) {
  const std::string cid = Accept();
  v1::Completion running;
  running.set_state(v1::CALL_STATE_RUNNING);
  EXPECT_EQ(journal_->Complete(cid, running, v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::Completion other = Succeeded();
  other.set_cid("another");
  EXPECT_EQ(journal_->Complete(cid, other, v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_DELIVERED).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<v1::Completion> unknown =
      journal_->Complete("nope", Succeeded(), v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), "no call with CID nope");
  EXPECT_EQ(journal_->last_sequence(), 0u);
  EXPECT_EQ(journal_->GetCall(cid)->state(), v1::CALL_STATE_ACCEPTED);
}

TEST_F(JournalTest, ConcurrentCompletesOfOneCallHaveOneWinner) {
  const std::string cid = Accept();
  constexpr int kThreads = 16;
  std::atomic<int> won{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r =
          journal_->Complete(cid, Succeeded(absl::StrCat("reply ", t)), v1::DELIVERY_STATE_NONE);
      if (r.ok()) ++won;
      if (r.status().code() == absl::StatusCode::kFailedPrecondition) ++refused;
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(refused.load(), kThreads - 1);
  EXPECT_EQ(journal_->last_sequence(), 1u);
}

// --- The completion log ------------------------------------------------------------------------

TEST_F(JournalTest, SequencesIncreaseAndCompletionsAfterResumes) {
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
  EXPECT_EQ(journal_->last_sequence(), previous);

  auto first = journal_->CompletionsAfter(0, 4);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ((*first)[i].cid(), order[i]);
  auto rest = journal_->CompletionsAfter(first->back().sequence(), 100);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ((*rest)[i].cid(), order[4 + i]);
    EXPECT_EQ((*rest)[i].reply(), "reply of " + order[4 + i]);
  }
  EXPECT_TRUE(journal_->CompletionsAfter(previous, 100)->empty());
  EXPECT_TRUE(journal_->CompletionsAfter(0, 0)->empty());
  EXPECT_TRUE(journal_->CompletionsAfter(UINT64_MAX, 10)->empty());

  // Concurrent completions still get distinct, gap-free sequences.
  std::vector<std::string> more;
  for (int i = 0; i < 32; ++i) more.push_back(Accept());
  std::vector<std::thread> threads;
  for (const std::string& cid : more) threads.emplace_back([&, cid] { Complete(cid); });
  for (std::thread& thread : threads) thread.join();
  auto all = journal_->CompletionsAfter(0, 1000);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 42u);
  for (size_t i = 0; i < all->size(); ++i) EXPECT_EQ((*all)[i].sequence(), i + 1);
}

// --- Restart -----------------------------------------------------------------------------------

TEST_F(JournalTest, ReopenPreservesEverything) {
  const std::string pending = Accept("greeter", "app", "k-pending");
  const std::string done = Accept("greeter", "app", "k-done");
  const std::string undelivered = Accept();
  const v1::Completion done_completion = Complete(done);
  Complete(undelivered, v1::DELIVERY_STATE_PENDING);
  const v1::Call before = *journal_->GetCall(pending);
  ASSERT_EQ(journal_->last_sequence(), 2u);

  Reopen();
  EXPECT_EQ(journal_->last_sequence(), 2u);
  EXPECT_EQ(journal_->pending_count(), 1u);
  EXPECT_EQ(journal_->GetCall(pending)->SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(journal_->GetCall(done)->completion().SerializeAsString(),
            done_completion.SerializeAsString());
  auto dedup = journal_->AcceptSync(Envelope("greeter", "app", "k-done"));
  ASSERT_TRUE(dedup.ok());
  EXPECT_EQ(dedup->cid, done);
  EXPECT_TRUE(dedup->deduplicated);
  // The sequence goes on where it stopped.
  EXPECT_EQ(Complete(pending).sequence(), 3u);
  EXPECT_EQ(journal_->pending_count(), 0u);
}

TEST_F(JournalTest, ForEachUnfinishedReturnsPendingCallsAndUndeliveredCompletions) {
  const std::string accepted = Accept();
  const std::string running = Accept();
  v1::Call call = *journal_->GetCall(running);
  call.set_state(v1::CALL_STATE_RUNNING);
  ASSERT_TRUE(journal_->UpdateCall(call).ok());
  const std::string no_callback = Accept();
  Complete(no_callback, v1::DELIVERY_STATE_NONE);
  const std::string undelivered = Accept();
  Complete(undelivered, v1::DELIVERY_STATE_PENDING);
  const std::string delivered = Accept();
  Complete(delivered, v1::DELIVERY_STATE_PENDING);
  ASSERT_TRUE(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  const std::string dead = Accept();
  Complete(dead, v1::DELIVERY_STATE_PENDING);
  v1::DeadLetter letter;
  ASSERT_TRUE(journal_->SetDelivery(dead, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  const std::string deleted = Accept();
  ASSERT_TRUE(journal_->Delete(deleted).ok());

  Reopen();
  std::vector<std::string> seen;
  ASSERT_TRUE(journal_
                  ->ForEachUnfinished([&](const v1::Call& c) {
                    seen.push_back(c.envelope().cid());
                    EXPECT_EQ(c.envelope().payload(), "payload of " + c.envelope().cid());
                  })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{accepted, running, undelivered}));
  EXPECT_EQ(journal_->pending_count(), 2u);
}

// --- Listing -----------------------------------------------------------------------------------

TEST_F(JournalTest, ListCallsFiltersAndPaginates) {
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
    auto page = journal_->ListCalls({}, 10, token);
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
  Journal::ListFilter filter;
  filter.service = "greeter";
  filter.source = "app";
  token.clear();
  do {
    auto page = journal_->ListCalls(filter, 2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->first.size(), 2u);
    for (const v1::Call& call : page->first) seen.push_back(call.envelope().cid());
    token = page->second;
  } while (!token.empty());
  EXPECT_EQ(seen, greeter_from_app);

  // By state.
  filter = {};
  filter.states = {v1::CALL_STATE_SUCCEEDED};
  auto succeeded = journal_->ListCalls(filter, 0, "");
  ASSERT_TRUE(succeeded.ok());
  EXPECT_EQ(succeeded->first.size(), 7u);
  EXPECT_EQ(succeeded->second, "");
  for (const v1::Call& call : succeeded->first) {
    EXPECT_EQ(call.state(), v1::CALL_STATE_SUCCEEDED);
    EXPECT_FALSE(call.completion().reply().empty());
  }
  filter.states = {v1::CALL_STATE_ACCEPTED, v1::CALL_STATE_RUNNING};
  EXPECT_EQ(journal_->ListCalls(filter, 1000, "")->first.size(), 18u);

  // The page size is capped at 1000.
  for (int i = 0; i < 1010; ++i) journal_->Accept(Envelope(), [](auto) {});
  Accept();
  auto big = journal_->ListCalls({}, 5000, "");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->first.size(), 1000u);
  EXPECT_FALSE(big->second.empty());
}

TEST_F(JournalTest, DeadLettersAreListedAndRemovedByRedrive) {
  std::vector<std::string> dead;
  for (int i = 0; i < 5; ++i) {
    dead.push_back(Accept());
    Complete(dead.back(), v1::DELIVERY_STATE_PENDING);
    v1::DeadLetter letter;
    letter.set_callback("app-async-callback");
    letter.set_delivery_attempts(5);
    letter.set_last_status_code(14);
    letter.set_last_status_message("unreachable");
    ASSERT_TRUE(journal_->SetDelivery(dead.back(), v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
    EXPECT_EQ(journal_->GetCall(dead.back())->callback_delivery(),
              v1::DELIVERY_STATE_DEAD_LETTERED);
  }

  auto page = journal_->ListDeadLetters(3, "");
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
  auto second = journal_->ListDeadLetters(3, page->second);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->first.size(), 2u);
  EXPECT_EQ(second->first[1].completion().cid(), dead[4]);
  EXPECT_EQ(second->second, "");

  // Dead letters are not recovered as unfinished work...
  std::vector<std::string> unfinished;
  ASSERT_TRUE(
      journal_
          ->ForEachUnfinished([&](const v1::Call& c) { unfinished.push_back(c.envelope().cid()); })
          .ok());
  EXPECT_TRUE(unfinished.empty());

  // ...until re-driven: back to PENDING, out of the list, recovered again.
  ASSERT_TRUE(journal_->SetDelivery(dead[1], v1::DELIVERY_STATE_PENDING, nullptr).ok());
  ASSERT_TRUE(journal_->SetDelivery(dead[3], v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  Reopen();
  auto left = journal_->ListDeadLetters(0, "");
  ASSERT_TRUE(left.ok());
  std::vector<std::string> left_cids;
  for (const auto& letter : left->first) left_cids.push_back(letter.completion().cid());
  EXPECT_EQ(left_cids, (std::vector<std::string>{dead[0], dead[2], dead[4]}));
  ASSERT_TRUE(
      journal_
          ->ForEachUnfinished([&](const v1::Call& c) { unfinished.push_back(c.envelope().cid()); })
          .ok());
  EXPECT_EQ(unfinished, std::vector<std::string>{dead[1]});
  EXPECT_EQ(journal_->GetCall(dead[1])->callback_delivery(), v1::DELIVERY_STATE_PENDING);
}

TEST_F(JournalTest, SetDeliveryRefusesImpossibleMoves) {
  const std::string open = Accept();
  EXPECT_EQ(journal_->SetDelivery(open, v1::DELIVERY_STATE_DELIVERED, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(journal_->SetDelivery("nope", v1::DELIVERY_STATE_DELIVERED, nullptr).code(),
            absl::StatusCode::kNotFound);
  const std::string no_callback = Accept();
  Complete(no_callback, v1::DELIVERY_STATE_NONE);
  EXPECT_EQ(journal_->SetDelivery(no_callback, v1::DELIVERY_STATE_PENDING, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  const std::string delivered = Accept();
  Complete(delivered, v1::DELIVERY_STATE_PENDING);
  ASSERT_TRUE(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_TRUE(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_EQ(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_PENDING, nullptr).code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeadLetter letter;
  EXPECT_EQ(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_PENDING, &letter).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_DEAD_LETTERED, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal_->SetDelivery(delivered, v1::DELIVERY_STATE_NONE, nullptr).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal_->GetCall(delivered)->callback_delivery(), v1::DELIVERY_STATE_DELIVERED);
}

// --- Purge and delete --------------------------------------------------------------------------

TEST_F(JournalTest, PurgeDeletesOnlyResultsWhoseRetentionRanOut) {
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
  ASSERT_TRUE(journal_->SetDelivery(dead, v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  const uint64_t last_sequence = journal_->last_sequence();

  // Delivered 12 hours after completion: kept until 24 hours after delivery.
  Advance(absl::Hours(12));
  ASSERT_TRUE(journal_->SetDelivery(delivered_late, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());

  auto purged = journal_->Purge(kEpoch + absl::Hours(23), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 0u);

  purged = journal_->Purge(kEpoch + absl::Hours(24), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(journal_->GetCall(no_callback).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(journal_->GetCall(delivered_late).ok());

  purged = journal_->Purge(kEpoch + absl::Hours(100), retention);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  EXPECT_EQ(journal_->GetCall(delivered_late).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(journal_->GetCall(pending).ok());
  EXPECT_TRUE(journal_->GetCall(undelivered).ok());
  EXPECT_TRUE(journal_->GetCall(dead).ok());
  EXPECT_EQ(journal_->ListDeadLetters(0, "")->first.size(), 1u);
  EXPECT_EQ(*journal_->Purge(kEpoch + absl::Hours(100), retention), 0u);

  // The purged completions left the log; the idempotency keys are free again.
  auto log = journal_->CompletionsAfter(0, 100);
  ASSERT_TRUE(log.ok());
  std::set<std::string> logged;
  for (const auto& completion : *log) logged.insert(completion.cid());
  EXPECT_EQ(logged, (std::set<std::string>{undelivered, dead}));
  const std::string reused = Accept("greeter", "app", "k-none");
  EXPECT_NE(reused, no_callback);
  EXPECT_EQ(journal_->AcceptSync(Envelope("greeter", "app", "k-pending"))->cid, pending);

  // A sequence is never handed out twice, even once its log entry is purged.
  Reopen();
  EXPECT_EQ(journal_->last_sequence(), last_sequence);
  EXPECT_EQ(Complete(reused).sequence(), last_sequence + 1);

  EXPECT_EQ(journal_->Purge(kEpoch, absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JournalTest, PurgeHandlesManyCallsInChunks) {
  std::vector<std::string> cids;
  for (int i = 0; i < 600; ++i) {
    v1::CallEnvelope envelope = Envelope();
    cids.push_back(envelope.cid());
    journal_->Accept(std::move(envelope), [](auto) {});
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < cids.size(); i += 8) Complete(cids[i]);
    });
  }
  for (std::thread& thread : threads) thread.join();
  auto purged = journal_->Purge(kEpoch + absl::Hours(2), absl::Hours(1));
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 600u);
  EXPECT_TRUE(AllCids().empty());
  EXPECT_TRUE(journal_->CompletionsAfter(0, 1000)->empty());
}

TEST_F(JournalTest, DeleteRemovesACallButKeepsItsIdempotencyKeyForTheRetention) {
  const std::string cast = Accept("greeter", "app", "cast-key");
  ASSERT_TRUE(journal_->Delete(cast).ok());
  EXPECT_EQ(journal_->GetCall(cast).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(journal_->pending_count(), 0u);
  EXPECT_EQ(journal_->Delete(cast).code(), absl::StatusCode::kNotFound);

  // A retried cast with the same key gets the first CID back and is not journaled again, also
  // after a restart, until the retention that started at the delete has run out.
  auto expect_deduplicated = [&] {
    absl::StatusOr<Journal::AcceptResult> again =
        journal_->AcceptSync(Envelope("greeter", "app", "cast-key"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->deduplicated);
    EXPECT_EQ(again->cid, cast);
    EXPECT_EQ(journal_->pending_count(), 0u);
  };
  expect_deduplicated();
  Reopen();
  expect_deduplicated();
  EXPECT_EQ(*journal_->Purge(kEpoch + absl::Hours(1) - absl::Seconds(1), absl::Hours(1)), 0u);
  expect_deduplicated();
  EXPECT_EQ(*journal_->Purge(kEpoch + absl::Hours(1), absl::Hours(1)), 0u);
  EXPECT_NE(Accept("greeter", "app", "cast-key"), cast);  // key released with the retention

  const std::string done = Accept();
  Complete(done);
  ASSERT_TRUE(journal_->Delete(done).ok());
  EXPECT_TRUE(journal_->CompletionsAfter(0, 10)->empty());
  EXPECT_EQ(*journal_->Purge(kEpoch + absl::Hours(48), absl::Hours(1)), 0u);

  Reopen();
  EXPECT_EQ(journal_->pending_count(), 1u);
}

TEST_F(JournalTest, CountsDeadLettersAndDeliveries) {
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) {
    cids.push_back(Accept());
    Complete(cids.back(), v1::DELIVERY_STATE_PENDING);
  }
  v1::DeadLetter letter;
  ASSERT_TRUE(journal_->SetDelivery(cids[0], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(journal_->SetDelivery(cids[1], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(journal_->SetDelivery(cids[1], v1::DELIVERY_STATE_DEAD_LETTERED, &letter).ok());
  ASSERT_TRUE(journal_->SetDelivery(cids[2], v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  EXPECT_EQ(journal_->dead_letter_count(), 2u);
  EXPECT_EQ(journal_->stats().deliveries, 1u);

  ASSERT_TRUE(journal_->SetDelivery(cids[0], v1::DELIVERY_STATE_PENDING, nullptr).ok());  // redrive
  EXPECT_EQ(journal_->dead_letter_count(), 1u);
  Reopen();
  EXPECT_EQ(journal_->dead_letter_count(), 1u);
  EXPECT_EQ(journal_->stats().deliveries, 0u);  // since Open
  ASSERT_TRUE(journal_->Delete(cids[1]).ok());
  EXPECT_EQ(journal_->dead_letter_count(), 0u);
  EXPECT_EQ(journal_->ListDeadLetters(0, "")->first.size(), 0u);
}

TEST_F(JournalTest, ListPagesAreBoundedByBytes) {
  // Three calls whose replies together exceed kMaxListPageBytes: a page stops after the call that
  // crossed the bound, so every page fits in a gRPC message however large the results.
  const std::string big_reply(kMaxListPageBytes * 2 / 3, 'r');
  std::vector<std::string> cids;
  for (int i = 0; i < 3; ++i) {
    cids.push_back(Accept());
    ASSERT_TRUE(
        journal_->Complete(cids.back(), Succeeded(big_reply), v1::DELIVERY_STATE_NONE).ok());
  }
  auto first = journal_->ListCalls({}, 100, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->first.size(), 2u);
  EXPECT_EQ(first->first[0].completion().reply(), big_reply);
  ASSERT_FALSE(first->second.empty());
  auto second = journal_->ListCalls({}, 100, first->second);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->first.size(), 1u);
  EXPECT_EQ(second->first[0].envelope().cid(), cids[0]);
  EXPECT_TRUE(second->second.empty());
}

TEST_F(JournalTest, ListsRefuseAPageTokenTheyDidNotReturn) {
  Accept();
  for (const std::string token : {"garbage!!", "01a20a15-c864-7065-a718"}) {
    auto calls = journal_->ListCalls({}, 10, token);
    EXPECT_EQ(calls.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(calls.status().message(), HasSubstr("page_token"));
    EXPECT_EQ(journal_->ListDeadLetters(10, token).status().code(),
              absl::StatusCode::kInvalidArgument)
        << token;
  }
}

// --- Faults ------------------------------------------------------------------------------------

TEST_F(JournalTest, FailedWriteIsUnavailableAndTheJournalStaysFailed) {
  auto file_system = std::make_shared<FaultInjectionFileSystem>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(file_system);
  Close();
  JournalOptions options = Options();
  options.env = env.get();
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  journal_ = std::move(*journal);
  const std::string before = Accept("greeter", "app", "k");
  ASSERT_TRUE(journal_->healthy());

  file_system->FailWalWrites(true);
  absl::StatusOr<Journal::AcceptResult> failed = journal_->AcceptSync(Envelope());
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_THAT(failed.status().message(), HasSubstr("journal write failed"));
  EXPECT_THAT(failed.status().message(), HasSubstr("injected fault"));
  EXPECT_FALSE(journal_->healthy());

  // The disk heals, but the journal acknowledges nothing more until it is reopened.
  file_system->FailWalWrites(false);
  EXPECT_EQ(journal_->AcceptSync(Envelope()).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(journal_->AcceptSync(Envelope("greeter", "app", "k")).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(journal_->Complete(before, Succeeded(), v1::DELIVERY_STATE_NONE).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(journal_->GetCall(before).ok()) << "reads keep working";
  EXPECT_EQ(journal_->pending_count(), 1u);

  journal_.reset();
  Reopen();
  EXPECT_TRUE(journal_->healthy());
  EXPECT_EQ(AllCids(), std::vector<std::string>{before});
}

TEST(JournalOpen, EmptyDirIsInvalidArgument) {
  EXPECT_EQ(Journal::Open(JournalOptions{}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JournalOpen, UnusableDirectoryIsRefusedNamingIt) {
  const std::string base = FreshDir("base");
  fs::create_directories(base);
  // A path below a regular file can never be created, also for root.
  const std::string file = base + "/not-a-dir";
  std::ofstream(file) << "x";
  JournalOptions options;
  options.dir = file + "/journal";
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options);
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition) << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr(options.dir));

  options.dir = file;
  journal = Journal::Open(options);
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition) << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr("journal directory " + file));

  if (geteuid() != 0) {  // root reads and writes through chmod 000
    const std::string locked = base + "/locked";
    fs::create_directories(locked);
    ASSERT_EQ(chmod(locked.c_str(), 0), 0);
    options.dir = locked;
    journal = Journal::Open(options);
    chmod(locked.c_str(), 0755);
    ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition) << journal.status();
    EXPECT_THAT(journal.status().message(), HasSubstr(locked));
  }
}

TEST(JournalOpen, SecondOpenOfTheSameDirectoryIsRefused) {
  JournalOptions options;
  options.dir = FreshDir("journal");
  auto first = Journal::Open(options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Journal::Open(options);
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(options.dir));
}

TEST(JournalOpen, ForeignRocksDbIsRefused) {
  const std::string dir = FreshDir("foreign");
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "hello", "world").ok());
    delete db;
  }
  JournalOptions options;
  options.dir = dir;
  auto journal = Journal::Open(options);
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition) << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr("not a callmesh journal"));
}

// Writes `bytes` at `offset` of `path` (offset < 0: from the end).
void Overwrite(const std::string& path, int64_t offset, const std::string& bytes) {
  const int64_t size = static_cast<int64_t>(fs::file_size(path));
  if (offset < 0) offset = std::max<int64_t>(0, size + offset);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(file.is_open()) << path;
  file.seekp(offset);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::vector<std::string> FilesEndingWith(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, suffix) || absl::StartsWith(name, suffix)) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string Garbage(size_t n) {
  std::string garbage;
  for (size_t i = 0; i < n; ++i) garbage.push_back(static_cast<char>((i * 131 + 7) % 251));
  return garbage;
}

// Fills a journal with enough calls that the damaged region has intact data after it, then
// closes it. With `flush`, the data is moved from the WAL into a table file.
void FillAndClose(const std::string& dir, bool flush) {
  {
    JournalOptions options;
    options.dir = dir;
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    CidGenerator cids;
    std::mt19937 random(7);
    for (int i = 0; i < 200; ++i) {
      v1::CallEnvelope envelope;
      envelope.set_cid(cids.Next());
      envelope.set_service("greeter");
      // Incompressible, so table files are large and damage lands in data blocks.
      std::string payload(300, '\0');
      for (char& c : payload) c = static_cast<char>(random());
      envelope.set_payload(payload);
      ASSERT_TRUE((*journal)->AcceptSync(envelope).ok());
    }
  }
  if (flush) {
    rocksdb::Options options;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    ASSERT_TRUE(db->Close().ok());
    delete db;
  }
}

struct Damage {
  const char* name;
  const char* file;  // suffix or prefix of the file name
  bool flush;
  int64_t offset;
  size_t length;
};

class JournalCorruption : public ::testing::TestWithParam<Damage> {};

TEST_P(JournalCorruption, OpenRefusesDamagedFiles) {
  const Damage& damage = GetParam();
  const std::string dir = FreshDir("journal");
  FillAndClose(dir, damage.flush);
  std::vector<std::string> files = FilesEndingWith(dir, damage.file);
  ASSERT_FALSE(files.empty()) << "no " << damage.file << " file in " << dir;
  const std::string victim = files.back();
  ASSERT_GT(fs::file_size(victim), 0u) << victim;
  Overwrite(victim, damage.offset, Garbage(damage.length));

  JournalOptions options;
  options.dir = dir;
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options);
  ASSERT_FALSE(journal.ok()) << "opened a journal with a damaged " << victim;
  EXPECT_TRUE(journal.status().code() == absl::StatusCode::kDataLoss ||
              journal.status().code() == absl::StatusCode::kFailedPrecondition)
      << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr(dir));
}

INSTANTIATE_TEST_SUITE_P(Files, JournalCorruption,
                         ::testing::Values(Damage{"Current", "CURRENT", false, 0, 16},
                                           Damage{"Manifest", "MANIFEST-", false, 20, 40},
                                           Damage{"WalMiddle", ".log", false, 2000, 64},
                                           Damage{"TableData", ".sst", true, 4000, 64},
                                           Damage{"TableFooter", ".sst", true, -48, 48}),
                         [](const ::testing::TestParamInfo<Damage>& info) {
                           return std::string(info.param.name);
                         });

TEST(JournalCorruptionTail, TornLastWalRecordIsAnUnacknowledgedWriteAndTolerated) {
  const std::string dir = FreshDir("journal");
  std::vector<std::string> cids;
  {
    JournalOptions options;
    options.dir = dir;
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    CidGenerator generator;
    for (int i = 0; i < 20; ++i) {
      v1::CallEnvelope envelope;
      envelope.set_cid(generator.Next());
      envelope.set_payload(std::string(100, 'p'));
      cids.push_back(envelope.cid());
      ASSERT_TRUE((*journal)->AcceptSync(envelope).ok());
    }
  }
  // Cut the last record in half, as a crash in the middle of its write would.
  std::vector<std::string> logs = FilesEndingWith(dir, ".log");
  ASSERT_FALSE(logs.empty());
  fs::resize_file(logs.back(), fs::file_size(logs.back()) - 60);

  JournalOptions options;
  options.dir = dir;
  auto journal = Journal::Open(options);
  ASSERT_TRUE(journal.ok()) << journal.status();
  for (size_t i = 0; i + 1 < cids.size(); ++i) {
    EXPECT_TRUE((*journal)->GetCall(cids[i]).ok()) << cids[i];
  }
  EXPECT_EQ((*journal)->GetCall(cids.back()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*journal)->pending_count(), cids.size() - 1);
}

TEST_F(JournalTest, GarbageRecordIsDataLossNamingTheKey) {
  const std::string pending = Accept();
  const std::string done = Accept();
  Complete(done);
  Close();
  auto put_raw = [&](const std::string& key, const std::string& value) {
    rocksdb::Options options;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &db).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
    delete db;
  };

  // A finished call: the journal opens, reading that record fails loudly.
  put_raw(journal_keys::CallKey(done), "\xff\xff\xff\xff garbage");
  Reopen();
  absl::StatusOr<v1::Call> call = journal_->GetCall(done);
  ASSERT_EQ(call.status().code(), absl::StatusCode::kDataLoss) << call.status();
  EXPECT_THAT(call.status().message(), HasSubstr("c/" + done));
  EXPECT_THAT(call.status().message(), HasSubstr(dir_));
  EXPECT_EQ(journal_->ListCalls({}, 0, "").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(journal_->CompletionsAfter(0, 10).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(journal_->GetCall(pending).ok());

  // Valid protobuf, but of another call: also garbage.
  v1::Call other;
  other.mutable_envelope()->set_cid("someone-else");
  Close();
  put_raw(journal_keys::CallKey(done), other.SerializeAsString());
  Reopen();
  EXPECT_EQ(journal_->GetCall(done).status().code(), absl::StatusCode::kDataLoss);

  // A call that recovery needs: the journal refuses to open.
  Close();
  put_raw(journal_keys::CallKey(pending), "\x0a\xff\xff\xff\xff\xff garbage");
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(Options());
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kDataLoss) << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr("c/" + pending));
  EXPECT_THAT(journal.status().message(), HasSubstr("does not parse"));
}

// --- Key layout --------------------------------------------------------------------------------

TEST(JournalKeys, NumbersSortBytewiseInNumericOrder) {
  EXPECT_EQ(journal_keys::SequenceKey(7), "s/00000000000000000007");
  EXPECT_EQ(journal_keys::SequenceKey(UINT64_MAX), "s/18446744073709551615");
  const std::vector<uint64_t> numbers = {0, 1, 9, 10, 99, 100, 12345678901234ull, UINT64_MAX};
  for (size_t i = 1; i < numbers.size(); ++i) {
    EXPECT_LT(journal_keys::SequenceKey(numbers[i - 1]), journal_keys::SequenceKey(numbers[i]));
  }
  for (uint64_t n : numbers) {
    uint64_t parsed = 1;
    ASSERT_TRUE(journal_keys::ParseSequenceKey(journal_keys::SequenceKey(n), &parsed));
    EXPECT_EQ(parsed, n);
  }
}

TEST(JournalKeys, MalformedNumbersAreRejected) {
  uint64_t n = 0;
  EXPECT_FALSE(journal_keys::DecodeUint64("", &n));
  EXPECT_FALSE(journal_keys::DecodeUint64("12a", &n));
  EXPECT_FALSE(journal_keys::DecodeUint64("-1", &n));
  EXPECT_FALSE(journal_keys::DecodeUint64("18446744073709551616", &n));   // 2^64
  EXPECT_FALSE(journal_keys::DecodeUint64("000000000000000000001", &n));  // 21 digits
  EXPECT_FALSE(journal_keys::ParseSequenceKey("s/7", &n));
  EXPECT_FALSE(journal_keys::ParseSequenceKey("c/00000000000000000007", &n));
}

TEST(JournalKeys, RetentionKeysOrderByTimeAndCarryTheCid) {
  const std::string early = journal_keys::RetentionKey(kEpoch, "b");
  const std::string late = journal_keys::RetentionKey(kEpoch + absl::Microseconds(1), "a");
  EXPECT_LT(early, late);
  uint64_t micros = 0;
  std::string cid;
  ASSERT_TRUE(journal_keys::ParseRetentionKey(late, &micros, &cid));
  EXPECT_EQ(micros, static_cast<uint64_t>(absl::ToUnixMicros(kEpoch)) + 1);
  EXPECT_EQ(cid, "a");
  EXPECT_EQ(journal_keys::RetentionKey(absl::UnixEpoch() - absl::Hours(1), "x"),
            "r/00000000000000000000/x");
  EXPECT_FALSE(journal_keys::ParseRetentionKey("r/123/x", &micros, &cid));
  EXPECT_FALSE(journal_keys::ParseRetentionKey("r/00000000000000000000/", &micros, &cid));
}

TEST(JournalKeys, PrefixEndBoundsThePrefix) {
  const std::string end = journal_keys::PrefixEnd("c/");
  EXPECT_EQ(end, "c0");
  EXPECT_LT(journal_keys::CallKey("\xff\xff"), end);
  EXPECT_GT(journal_keys::IdempotencyKey(""), end);
}

TEST(JournalKeys, PrintableEscapesAndTruncates) {
  EXPECT_EQ(journal_keys::Printable("i/k\n\x01"), "i/k\\n\\x01");
  EXPECT_EQ(journal_keys::Printable(std::string(300, 'k')), std::string(200, 'k') + "...");
}

// --- Configuration -----------------------------------------------------------------------------

TEST(JournalOptionsFromConfig, MapsDataDirAndDurability) {
  v1::SidecarConfig config;
  config.set_data_dir("/var/lib/callmesh");
  config.mutable_journal()->set_durability(v1::JournalConfig::FSYNC);
  JournalOptions options = JournalOptionsFromConfig(config);
  EXPECT_EQ(options.dir, "/var/lib/callmesh");
  EXPECT_TRUE(options.sync);
  config.mutable_journal()->set_durability(v1::JournalConfig::NONE);
  EXPECT_FALSE(JournalOptionsFromConfig(config).sync);
}

}  // namespace
}  // namespace callmesh::sidecar

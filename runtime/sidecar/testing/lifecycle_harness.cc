#include "runtime/sidecar/testing/lifecycle_harness.h"

#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/config/config_loader.h"

namespace callmesh::testing {
namespace {

std::unique_ptr<sidecar::Journal> OpenJournal(FakeClock* clock) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/journal.XXXXXX");
  EXPECT_NE(mkdtemp(dir.data()), nullptr) << dir;
  sidecar::JournalOptions options;
  options.dir = dir;
  options.clock = [clock] { return clock->Now(); };
  absl::StatusOr<std::unique_ptr<sidecar::Journal>> journal = sidecar::Journal::Open(options);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return journal.ok() ? *std::move(journal) : nullptr;
}

}  // namespace

v1::SidecarConfig TestConfig(const std::string& yaml) {
  absl::StatusOr<v1::SidecarConfig> config = sidecar::ParseConfig(yaml, "test config");
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return {};
  sidecar::ApplyConfigDefaults(&*config);
  absl::Status valid = sidecar::ValidateConfig(*config);
  EXPECT_TRUE(valid.ok()) << valid;
  return *config;
}

LifecycleHarness::LifecycleHarness(const std::string& config_yaml)
    : clock(absl::FromUnixSeconds(1800000000)),
      config(TestConfig(config_yaml)),
      journal(OpenJournal(&clock)),
      store(journal.get()),
      registry(sidecar::Registry::Options{}),
      invoker(&registry, &cids, sidecar::Invoker::Options{}, &clock),
      policies(config),
      runner(4, &clock) {}

LifecycleHarness::~LifecycleHarness() {
  runner.Stop();
  invoker.CancelAllAndWait();
  registry.Stop();
}

sidecar::RetryPlan ThreeAttemptsNoJitter() {
  sidecar::RetryPlan plan;
  plan.max_attempts = 3;
  plan.initial_backoff = absl::Seconds(1);
  plan.max_backoff = absl::Seconds(10);
  plan.multiplier = 2;
  plan.jitter = 0;
  return plan;
}

v1::CallEnvelope LifecycleHarness::Envelope(const std::string& service, v1::CallKind kind,
                                            absl::Duration timeout) {
  v1::CallEnvelope envelope;
  envelope.set_cid(cids.Next());
  envelope.set_kind(kind);
  envelope.set_service(service);
  envelope.set_method("callmesh.v1.Callback/OnCompletion");
  envelope.set_source("tester");
  *envelope.mutable_accepted_at() = ToProtoTimestamp(clock.Now());
  *envelope.mutable_deadline() = ToProtoTimestamp(clock.Now() + timeout);
  return envelope;
}

v1::Completion LifecycleHarness::Completed(const std::string& callback) {
  v1::CallEnvelope envelope = Envelope("target", v1::CALL_KIND_INVOKE_ASYNC);
  envelope.set_callback(callback);
  absl::StatusOr<sidecar::CallStore::AcceptResult> accepted = store.AcceptSync(envelope);
  EXPECT_TRUE(accepted.ok()) << accepted.status();
  v1::Completion outcome;
  outcome.set_cid(envelope.cid());
  outcome.set_state(v1::CALL_STATE_SUCCEEDED);
  outcome.set_reply("reply");
  absl::StatusOr<v1::Completion> stored =
      store.Complete(envelope.cid(), outcome, v1::DELIVERY_STATE_PENDING);
  EXPECT_TRUE(stored.ok()) << stored.status();
  return stored.ok() ? *stored : outcome;
}

v1::DeadLetter LifecycleHarness::OnlyDeadLetter(const std::string& cid) {
  absl::StatusOr<v1::Call> dead = store.AwaitDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED);
  EXPECT_TRUE(dead.ok()) << dead.status();
  auto letters = store.ListDeadLetters(0, "");
  EXPECT_TRUE(letters.ok()) << letters.status();
  if (!dead.ok() || !letters.ok()) return v1::DeadLetter();
  if (letters->first.size() != 1) {
    ADD_FAILURE() << "expected exactly one dead letter (for " << cid << "), found "
                  << letters->first.size();
    return v1::DeadLetter();
  }
  return letters->first[0];
}

}  // namespace callmesh::testing

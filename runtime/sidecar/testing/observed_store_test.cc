// ObservedStore is a CallStore: it passes the conformance suite around the RocksDB journal, and
// its AwaitCall wakes on writes made by other threads.
#include "runtime/sidecar/testing/observed_store.h"

#include <thread>

#include "gtest/gtest.h"
#include "runtime/common/cid.h"
#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/store/call_store_conformance.h"

namespace callmesh::testing {
namespace {

using sidecar::CallStore;
using sidecar::CallStoreConformance;

absl::StatusOr<std::unique_ptr<CallStore>> OpenObservedJournal(const std::string& dir,
                                                               std::function<absl::Time()> clock) {
  sidecar::JournalOptions options;
  options.dir = dir;
  options.clock = std::move(clock);
  absl::StatusOr<std::unique_ptr<sidecar::Journal>> journal = sidecar::Journal::Open(options);
  if (!journal.ok()) return journal.status();
  return std::unique_ptr<CallStore>(new ObservedStore(*std::move(journal)));
}

INSTANTIATE_TEST_SUITE_P(Observed, CallStoreConformance,
                         ::testing::Values(sidecar::CallStoreFactory{"ObservedJournal",
                                                                     OpenObservedJournal}),
                         sidecar::CallStoreFactory::TestName);

TEST(ObservedStore, AwaitCallWakesOnAWriteFromAnotherThread) {
  absl::StatusOr<std::unique_ptr<CallStore>> opened = OpenObservedJournal(
      std::string(std::getenv("TEST_TMPDIR")) + "/await", [] { return absl::Now(); });
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto& store = static_cast<ObservedStore&>(**opened);
  v1::CallEnvelope envelope;
  envelope.set_cid(CidGenerator().Next());
  envelope.set_kind(v1::CALL_KIND_INVOKE_ASYNC);
  envelope.set_service("greeter");
  ASSERT_TRUE(store.AcceptSync(envelope).ok());
  std::thread writer([&] {
    v1::Call running;
    running.mutable_envelope()->set_cid(envelope.cid());
    running.set_state(v1::CALL_STATE_RUNNING);
    running.set_attempts(1);
    EXPECT_TRUE(store.UpdateCall(running).ok());
  });
  absl::StatusOr<v1::Call> call = store.AwaitState(envelope.cid(), v1::CALL_STATE_RUNNING);
  writer.join();
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->attempts(), 1u);
  EXPECT_FALSE(store.AwaitGone(envelope.cid(), absl::ZeroDuration()));
  ASSERT_TRUE(store.Delete(envelope.cid()).ok());
  EXPECT_TRUE(store.AwaitGone(envelope.cid()));
}

}  // namespace
}  // namespace callmesh::testing

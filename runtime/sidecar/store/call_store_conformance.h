// The conformance suite of CallStore: every behaviour of the contract in call_store.h, written
// against the interface only, so that every implementation (the RocksDB journal today, a
// replicated store later) is held to the same behaviour. An implementation instantiates it once
// with a factory that opens its store in a folder:
//
//   INSTANTIATE_TEST_SUITE_P(
//       RocksDbJournal, CallStoreConformance,
//       ::testing::Values(CallStoreFactory{
//           "RocksDbJournal",
//           [](const std::string& dir, std::function<absl::Time()> clock)
//               -> absl::StatusOr<std::unique_ptr<CallStore>> {
//             JournalOptions options;
//             options.dir = dir;
//             options.clock = std::move(clock);
//             return Journal::Open(options);
//           }}),
//       CallStoreFactory::TestName);
//
// and links //runtime/sidecar/store:call_store_conformance (alwayslink: the tests register
// themselves). What is specific to one implementation (its files, corruption, fault injection,
// group commit into batches, power loss) is tested beside it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/cid.h"
#include "runtime/sidecar/store/call_store.h"

namespace callmesh::sidecar {

struct CallStoreFactory {
  // Names the instantiation in test names (letters, digits and '_').
  std::string name;
  // Opens the store kept in `dir`: an empty folder the first time, the same folder again after
  // the previous store of the test was destroyed (a restart). Timestamps the store fills in
  // itself come from `clock` (safe to call from any thread, as long as the store lives).
  std::function<absl::StatusOr<std::unique_ptr<CallStore>>(const std::string& dir,
                                                           std::function<absl::Time()> clock)>
      open;

  // For INSTANTIATE_TEST_SUITE_P's name generator.
  static std::string TestName(const ::testing::TestParamInfo<CallStoreFactory>& info) {
    return info.param.name;
  }
};

// The fixture: a fresh store per test in its own folder under the test's temporary directory,
// a clock that only moves by Advance, and helpers that build envelopes and completions.
class CallStoreConformance : public ::testing::TestWithParam<CallStoreFactory> {
 protected:
  // The clock starts here.
  static const absl::Time kEpoch;

  void SetUp() override;
  void TearDown() override;

  // Destroys the store (finishing queued writes) and opens it again on the same folder.
  void Reopen();
  absl::Time Now();
  void Advance(absl::Duration d);

  // A new envelope (fresh CID, kind INVOKE_ASYNC, method helloworld.Greeter/SayHello, payload
  // "payload of <cid>", header x-tenant=blue, accepted_at = Now()).
  v1::CallEnvelope Envelope(const std::string& service = "greeter",
                            const std::string& source = "app", const std::string& key = "");
  // Accepts a new call (expecting it not to be deduplicated) and returns its CID.
  std::string Accept(const std::string& service = "greeter", const std::string& source = "app",
                     const std::string& key = "");
  // An outcome SUCCEEDED with `reply` after one attempt.
  static v1::Completion Succeeded(const std::string& reply = "reply");
  // Completes `cid` as SUCCEEDED with reply "reply of <cid>"; returns the stored completion.
  v1::Completion Complete(const std::string& cid,
                          v1::DeliveryState delivery = v1::DELIVERY_STATE_NONE);
  // Every CID in the store, in CID (acceptance) order.
  std::vector<std::string> AllCids();

  std::string dir_;
  CidGenerator cids_;
  std::unique_ptr<CallStore> store_;

 private:
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = kEpoch;
};

}  // namespace callmesh::sidecar

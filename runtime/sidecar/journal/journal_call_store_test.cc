// The CallStore conformance suite (runtime/sidecar/store/call_store_conformance.h) run against
// the RocksDB journal, fsyncing as callmeshd does by default.
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/store/call_store_conformance.h"

namespace callmesh::sidecar {
namespace {

absl::StatusOr<std::unique_ptr<CallStore>> OpenJournal(const std::string& dir,
                                                       std::function<absl::Time()> clock) {
  JournalOptions options;
  options.dir = dir;
  options.clock = std::move(clock);
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(options);
  if (!journal.ok()) return journal.status();
  return std::unique_ptr<CallStore>(std::move(*journal));
}

INSTANTIATE_TEST_SUITE_P(RocksDb, CallStoreConformance,
                         ::testing::Values(CallStoreFactory{"Journal", OpenJournal}),
                         CallStoreFactory::TestName);

}  // namespace
}  // namespace callmesh::sidecar

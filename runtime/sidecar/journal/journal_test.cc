// Tests of what is particular to the RocksDB journal, against a real RocksDB in a fresh folder
// under $TEST_TMPDIR: group commit, failing disks, opening, damaged files, the key layout. In the
// manner of LevelDB's log and fault-injection tests: write, close, damage the files or the disk,
// reopen, and check that everything acknowledged is there — or that the journal refuses to open.
// The behaviour of the CallStore contract is tested by the conformance suite
// (journal_call_store_test.cc), power loss by journal_power_loss_test.cc.
#include "runtime/sidecar/journal/journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
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
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/journal/fault_injection_file_system.h"
#include "runtime/sidecar/journal/journal_keys.h"
#include "runtime/sidecar/store/store_testing.h"

namespace callmesh::sidecar {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

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

  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }

  v1::CallEnvelope Envelope(const std::string& service = "greeter",
                            const std::string& source = "app", const std::string& key = "") {
    return TestEnvelope(cids_.Next(), Now(), service, source, key);
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

  std::vector<std::string> AllCids() { return sidecar::AllCids(*journal_); }

  std::string dir_;
  CidGenerator cids_;
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = kEpoch;
  std::unique_ptr<Journal> journal_;
};

// --- Group commit
// -------------------------------------------------------------------------------------------------------------------------------------

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

TEST_F(JournalTest, ConcurrentAcceptsShareBatchesAndFsyncs) {
  // That they are all stored is a CallStore conformance test; here: group commit at work.
  constexpr int kThreads = 64;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!journal_->AcceptSync(Envelope()).ok()) ++failures;
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
}

// With JournalOptions::spin_wait the writer watches for the next write before it sleeps: every
// write is still taken and reported — one at a time (each arriving while it spins), many at once,
// and writes still queued when the journal closes.
TEST_F(JournalTest, AWriterThatSpinsForTheNextWriteLosesNone) {
  journal_.reset();
  JournalOptions options = Options();
  options.spin_wait = absl::Milliseconds(10);
  absl::StatusOr<std::unique_ptr<Journal>> spinning = Journal::Open(options);
  ASSERT_TRUE(spinning.ok()) << spinning.status();
  journal_ = *std::move(spinning);
  for (int i = 0; i < 100; ++i) Accept();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) EXPECT_TRUE(journal_->AcceptSync(Envelope()).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::atomic<int> reported{0};
  for (int i = 0; i < 100; ++i) {
    journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
      EXPECT_TRUE(result.ok()) << result.status();
      ++reported;
    });
  }
  Close();
  EXPECT_EQ(reported.load(), 100);
  Reopen();
  EXPECT_EQ(AllCids().size(), 400u);
}

// --- What a speed-up relies on: the writer only writes ---------------------------------------

// A journal on the fault-injection file system, whose WAL syncs a test can hold.
class HeldSyncJournalTest : public JournalTest {
 protected:
  void SetUp() override {
    dir_ = FreshDir("journal");
    file_system_ = std::make_shared<FaultInjectionFileSystem>();
    env_ = rocksdb::NewCompositeEnv(file_system_);
    JournalOptions options = Options();
    options.env = env_.get();
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = std::move(*journal);
  }
  void TearDown() override {
    file_system_->HoldWalSyncs(false);
    journal_.reset();
  }

  // Blocks until `n` mutations wait in the journal's queue (they are submitted, not yet taken).
  void AwaitQueued(size_t n) {
    while (journal_->queued() < n) std::this_thread::yield();
  }

  // A newly accepted call's update for its first attempt (a bookkeeping write: no sync).
  v1::Call FirstAttemptOfANewCall() {
    v1::Call update = *journal_->GetCall(Accept());
    update.set_state(v1::CALL_STATE_RUNNING);
    update.set_attempts(1);
    return update;
  }

  std::shared_ptr<FaultInjectionFileSystem> file_system_;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(HeldSyncJournalTest, AcceptIsReportedOnlyAfterItsSyncReturned) {
  file_system_->HoldWalSyncs(true);
  absl::Notification reported;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    reported.Notify();
  });
  file_system_->WaitForHeldSync();
  EXPECT_FALSE(reported.HasBeenNotified()) << "acknowledged before its fsync returned";
  file_system_->HoldWalSyncs(false);
  reported.WaitForNotification();
}

// An idle journal hands its memtable to a table file once (so RocksDB can free it); a busy one,
// or one with nothing new since its last flush, is left alone.
TEST_F(JournalTest, FlushIfIdleFlushesOnceAfterAQuietInterval) {
  auto entries_in_memtable = [this] {
    uint64_t entries = 0;
    EXPECT_TRUE(
        journal_->shared_db()->GetIntProperty("rocksdb.num-entries-active-mem-table", &entries));
    return entries;
  };
  Accept();
  EXPECT_EQ(*journal_->FlushIfIdle(), false);  // written since the previous check: busy
  EXPECT_GT(entries_in_memtable(), 0u);
  EXPECT_EQ(*journal_->FlushIfIdle(), true);  // nothing written since: idle
  EXPECT_EQ(entries_in_memtable(), 0u);
  EXPECT_EQ(*journal_->FlushIfIdle(), false);  // nothing new to flush
  const std::string cid = Accept();
  EXPECT_EQ(*journal_->FlushIfIdle(), false);
  EXPECT_EQ(*journal_->FlushIfIdle(), true);
  EXPECT_EQ(journal_->GetCall(cid)->state(), v1::CALL_STATE_ACCEPTED);  // still readable
}

// The dispatcher reports an outcome from Complete's callback: that callback must not run before
// the outcome's fsync returned, while the attempt record written without one is reported at once.
TEST_F(HeldSyncJournalTest, CompleteWithACallbackIsReportedOnlyAfterItsSyncReturned) {
  const std::string cid = Accept();
  file_system_->HoldWalSyncs(true);
  absl::Notification completed;
  journal_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_NONE,
                     [&](absl::StatusOr<v1::Completion> completion) {
                       EXPECT_TRUE(completion.ok()) << completion.status();
                       completed.Notify();
                     });
  file_system_->WaitForHeldSync();
  EXPECT_FALSE(completed.HasBeenNotified()) << "outcome reported before its fsync returned";
  file_system_->HoldWalSyncs(false);
  completed.WaitForNotification();
}

// The writer does not run `done` callbacks: while one is busy, the next batches are written and
// reported. (Before, the writer ran them itself and a slow one held up every write behind it.)
TEST_F(HeldSyncJournalTest, SlowDoneCallbackDoesNotHoldUpLaterWrites) {
  absl::Notification in_done, release_done;
  std::thread::id done_thread;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    done_thread = std::this_thread::get_id();
    in_done.Notify();
    release_done.WaitForNotification();
  });
  in_done.WaitForNotification();
  EXPECT_NE(done_thread, std::this_thread::get_id());
  // Blocking writes complete while the first done callback is still running.
  const std::string cid = Accept();
  EXPECT_TRUE(journal_->Complete(cid, Succeeded(), v1::DELIVERY_STATE_NONE).ok());
  release_done.Notify();
}

// While one done callback is busy, the callbacks of later writes wait for it: they run in the
// order of their writes, even though those writes are made meanwhile.
TEST_F(HeldSyncJournalTest, DoneCallbacksKeepTheOrderOfTheirWritesBehindASlowOne) {
  absl::Notification in_first, release_first, second_reported;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    in_first.Notify();
    release_first.WaitForNotification();
  });
  in_first.WaitForNotification();
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    second_reported.Notify();
  });
  Accept();  // written after the second accept, so that one is written too
  EXPECT_FALSE(second_reported.HasBeenNotified()) << "reported ahead of an earlier write";
  release_first.Notify();
  second_reported.WaitForNotification();
}

// The callback of a bookkeeping write runs while the durable writes of its group still sync.
TEST_F(HeldSyncJournalTest, CallbackOfAnUnsyncedWriteRunsWhileItsGroupSyncs) {
  const v1::Call update = FirstAttemptOfANewCall();

  file_system_->HoldWalSyncs(true);
  journal_->Accept(Envelope(), [](absl::StatusOr<Journal::AcceptResult>) {});
  file_system_->WaitForHeldSync();  // the writer is busy; what follows forms one group
  absl::Notification durable_reported, update_reported;
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    durable_reported.Notify();
  });
  journal_->UpdateCall(update, [&](absl::Status status) {
    EXPECT_TRUE(status.ok()) << status;
    update_reported.Notify();
  });
  AwaitQueued(2);
  file_system_->ReleaseOneHeldSync();  // the first group's sync; the next one is held
  update_reported.WaitForNotification();
  file_system_->WaitForHeldSync();
  EXPECT_FALSE(durable_reported.HasBeenNotified()) << "acknowledged before its fsync returned";
  file_system_->HoldWalSyncs(false);
  durable_reported.WaitForNotification();
}

// A call's own writes keep their order when bookkeeping writes move ahead of durable ones: an
// update queued right behind the async Accept of its call finds the call.
TEST_F(HeldSyncJournalTest, UpdateQueuedBehindTheAcceptOfItsCallKeepsItsPlace) {
  file_system_->HoldWalSyncs(true);
  journal_->Accept(Envelope(), [](absl::StatusOr<Journal::AcceptResult>) {});
  file_system_->WaitForHeldSync();  // the writer is busy; what follows forms one group
  v1::CallEnvelope envelope = Envelope();
  const std::string cid = envelope.cid();
  absl::Notification accepted;
  journal_->Accept(std::move(envelope), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    accepted.Notify();
  });
  v1::Call update;
  update.mutable_envelope()->set_cid(cid);
  update.set_state(v1::CALL_STATE_RUNNING);
  update.set_attempts(1);
  absl::Status updated;
  std::thread updater([&] { updated = journal_->UpdateCall(update); });
  AwaitQueued(2);
  file_system_->HoldWalSyncs(false);
  updater.join();
  accepted.WaitForNotification();
  EXPECT_TRUE(updated.ok()) << updated;
  EXPECT_EQ(journal_->GetCall(cid)->attempts(), 1u);
}

// A bookkeeping write (no sync needed) queued together with a durable one is reported without
// waiting for the durable one's fsync, and the durable one is still reported only after it.
TEST_F(HeldSyncJournalTest, UnsyncedWriteDoesNotWaitForTheFsyncOfItsGroup) {
  const v1::Call update = FirstAttemptOfANewCall();
  const std::string& running = update.envelope().cid();

  file_system_->HoldWalSyncs(true);
  absl::Notification first_reported, durable_reported, update_reported;
  // Keeps the writer busy (held in its sync) while the next group queues up.
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    first_reported.Notify();
  });
  file_system_->WaitForHeldSync();
  // The next group: a durable accept, then an attempt-number update (no sync).
  journal_->Accept(Envelope(), [&](absl::StatusOr<Journal::AcceptResult> result) {
    EXPECT_TRUE(result.ok()) << result.status();
    durable_reported.Notify();
  });
  absl::Status updated;
  std::thread updater([&] {
    updated = journal_->UpdateCall(update);
    update_reported.Notify();
  });
  AwaitQueued(2);
  file_system_->ReleaseOneHeldSync();  // the first group's sync; the next one is held
  first_reported.WaitForNotification();

  // With the second group's sync held, the update is reported and readable; the accept is not.
  update_reported.WaitForNotification();
  EXPECT_TRUE(updated.ok()) << updated;
  EXPECT_EQ(journal_->GetCall(running)->attempts(), 1u);
  file_system_->WaitForHeldSync();
  EXPECT_FALSE(durable_reported.HasBeenNotified()) << "acknowledged before its fsync returned";
  file_system_->HoldWalSyncs(false);
  durable_reported.WaitForNotification();
  updater.join();
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

// Keys are scoped by source: another app reusing a key neither attaches to the call nor learns
// its CID. An unscoped key of a journal written before the scoping still counts for its source.
TEST_F(JournalTest, IdempotencyKeysAreScopedBySourceAndOldUnscopedKeysStillCount) {
  const std::string first = Accept("greeter", "orders", "k");
  absl::StatusOr<Journal::AcceptResult> again =
      journal_->AcceptSync(Envelope("greeter", "orders", "k"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->cid, first);
  const std::string other = Accept("greeter", "mallory", "k");
  EXPECT_NE(other, first);

  // As a journal from before the scoping left it: i/<key> only.
  Close();
  {
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &db).ok());
    ASSERT_TRUE(
        db->Delete(rocksdb::WriteOptions(), journal_keys::ScopedIdempotencyKey("orders", "k"))
            .ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), journal_keys::IdempotencyKey("k"), first).ok());
    delete db;
  }
  Reopen();
  absl::StatusOr<Journal::AcceptResult> old =
      journal_->AcceptSync(Envelope("greeter", "orders", "k"));
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_TRUE(old->deduplicated);
  EXPECT_EQ(old->cid, first);
  absl::StatusOr<Journal::AcceptResult> stranger =
      journal_->AcceptSync(Envelope("greeter", "eve", "k"));
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  EXPECT_FALSE(stranger->deduplicated);
  EXPECT_NE(stranger->cid, first);
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

// --- The call record's parts (journal_keys.h: c/, b/, o/) ---------------------------------------

// The raw value at `key` in a closed journal's folder; nullopt if absent.
std::optional<std::string> ReadRaw(const std::string& dir, const std::string& key) {
  rocksdb::DB* db = nullptr;
  EXPECT_TRUE(rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir, &db).ok());
  std::unique_ptr<rocksdb::DB> owned(db);
  std::string value;
  const rocksdb::Status s = db->Get(rocksdb::ReadOptions(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  EXPECT_TRUE(s.ok()) << s.ToString();
  return value;
}

// Writes raw key-value pairs into a closed journal's folder.
void WriteRaw(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& kvs) {
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir, &db).ok());
  std::unique_ptr<rocksdb::DB> owned(db);
  for (const auto& [key, value] : kvs) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  }
}

v1::Call ParseRawCall(const std::optional<std::string>& bytes) {
  v1::Call call;
  EXPECT_TRUE(bytes.has_value());
  if (bytes.has_value()) EXPECT_TRUE(call.ParseFromString(*bytes));
  return call;
}

TEST_F(JournalTest, PayloadAndReplyAreWrittenOnceUnderKeysOfTheirOwnAndJoinedOnRead) {
  const std::string active = Accept();
  const std::string done = Accept();
  ASSERT_TRUE(journal_
                  ->UpdateCall([&] {
                    absl::StatusOr<v1::Call> call = journal_->GetCall(active);
                    EXPECT_TRUE(call.ok());
                    call->set_state(v1::CALL_STATE_RUNNING);
                    call->set_attempts(2);
                    return *call;
                  }())
                  .ok());
  Complete(done, v1::DELIVERY_STATE_PENDING);

  // Every reader that returns a payload or a reply has it.
  absl::StatusOr<v1::Call> got = journal_->GetCall(active);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->envelope().payload(), "payload of " + active);
  EXPECT_EQ(got->attempts(), 2);
  got = journal_->GetCall(done);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->envelope().payload(), "payload of " + done);
  EXPECT_EQ(got->completion().reply(), "reply of " + done);
  absl::StatusOr<std::vector<v1::Completion>> log = journal_->CompletionsAfter(0, 10);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].reply(), "reply of " + done);
  auto listed = journal_->ListCalls({}, 0, "");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->first.size(), 2u);
  for (const v1::Call& call : listed->first) {
    EXPECT_EQ(call.envelope().payload(), "");  // ListCalls' contract: payload cleared
    EXPECT_EQ(call.completion().reply(), call.envelope().cid() == done ? "reply of " + done : "");
  }
  std::map<std::string, v1::Call> unfinished;
  ASSERT_TRUE(journal_
                  ->ForEachUnfinished(
                      [&](const v1::Call& call) { unfinished[call.envelope().cid()] = call; })
                  .ok());
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[active].envelope().payload(), "payload of " + active);
  EXPECT_EQ(unfinished[done].envelope().payload(), "payload of " + done);
  EXPECT_EQ(unfinished[done].completion().reply(), "reply of " + done);
  v1::DeadLetter dead;
  dead.set_last_status_code(14);
  ASSERT_TRUE(journal_->SetDelivery(done, v1::DELIVERY_STATE_DEAD_LETTERED, &dead).ok());
  auto dead_letters = journal_->ListDeadLetters(0, "");
  ASSERT_TRUE(dead_letters.ok()) << dead_letters.status();
  ASSERT_EQ(dead_letters->first.size(), 1u);
  EXPECT_EQ(dead_letters->first[0].completion().reply(), "reply of " + done);

  // On disk: the c/ records hold neither, b/ and o/ hold them once.
  Close();
  for (const std::string& cid : {active, done}) {
    const v1::Call record = ParseRawCall(ReadRaw(dir_, journal_keys::CallKey(cid)));
    EXPECT_EQ(record.envelope().cid(), cid);
    EXPECT_EQ(record.envelope().payload(), "");
    EXPECT_EQ(record.completion().reply(), "");
    EXPECT_EQ(ReadRaw(dir_, journal_keys::PayloadKey(cid)), "payload of " + cid);
  }
  EXPECT_EQ(ReadRaw(dir_, journal_keys::ReplyKey(done)), "reply of " + done);
  EXPECT_EQ(ReadRaw(dir_, journal_keys::ReplyKey(active)), std::nullopt);

  // Deleting and purging a call removes every part.
  Reopen();
  ASSERT_TRUE(journal_->Complete(active, Succeeded("r"), v1::DELIVERY_STATE_NONE).ok());
  ASSERT_TRUE(journal_->Delete(active).ok());
  ASSERT_TRUE(journal_->SetDelivery(done, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  absl::StatusOr<size_t> purged = journal_->Purge(Now() + absl::Hours(1), absl::Minutes(1));
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 1u);
  Close();
  for (const std::string& cid : {active, done}) {
    EXPECT_EQ(ReadRaw(dir_, journal_keys::CallKey(cid)), std::nullopt);
    EXPECT_EQ(ReadRaw(dir_, journal_keys::PayloadKey(cid)), std::nullopt);
    EXPECT_EQ(ReadRaw(dir_, journal_keys::ReplyKey(cid)), std::nullopt);
  }
}

TEST_F(JournalTest, AFormatOneJournalIsUpgradedAndItsRecordsSplitAtTheirNextRewrite) {
  // Two calls as a format "1" journal holds them: payload and reply inline in c/.
  const std::string active = cids_.Next();
  const std::string done = cids_.Next();
  v1::Call active_call;
  *active_call.mutable_envelope() = TestEnvelope(active, Now(), "greeter", "app", "");
  active_call.set_state(v1::CALL_STATE_ACCEPTED);
  v1::Call done_call;
  *done_call.mutable_envelope() = TestEnvelope(done, Now(), "greeter", "app", "");
  done_call.set_state(v1::CALL_STATE_SUCCEEDED);
  done_call.set_callback_delivery(v1::DELIVERY_STATE_PENDING);
  *done_call.mutable_completion() = Succeeded("old reply");
  done_call.mutable_completion()->set_cid(done);
  done_call.mutable_completion()->set_sequence(1);
  Close();
  WriteRaw(dir_, {{std::string(journal_keys::kFormatKey), "1"},
                  {journal_keys::CallKey(active), active_call.SerializeAsString()},
                  {journal_keys::UnfinishedKey(active), "A"},
                  {journal_keys::CallKey(done), done_call.SerializeAsString()},
                  {journal_keys::UnfinishedKey(done), "D"},
                  {journal_keys::SequenceKey(1), done},
                  {std::string(journal_keys::kLastSequenceKey), "1"}});

  // A journal that does not check out is refused and left as it was: still format "1".
  const std::string broken = cids_.Next();
  WriteRaw(dir_, {{journal_keys::CallKey(broken), "\xff garbage"},
                  {journal_keys::UnfinishedKey(broken), "A"}});
  absl::StatusOr<std::unique_ptr<Journal>> refused = Journal::Open(Options());
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  EXPECT_EQ(ReadRaw(dir_, std::string(journal_keys::kFormatKey)), "1");
  {
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, &db).ok());
    std::unique_ptr<rocksdb::DB> owned(db);
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), journal_keys::CallKey(broken)).ok());
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), journal_keys::UnfinishedKey(broken)).ok());
  }

  Reopen();
  EXPECT_EQ(journal_->pending_count(), 1u);
  absl::StatusOr<v1::Call> got = journal_->GetCall(active);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->envelope().payload(), "payload of " + active);
  got = journal_->GetCall(done);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->completion().reply(), "old reply");
  absl::StatusOr<std::vector<v1::Completion>> log = journal_->CompletionsAfter(0, 10);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ((*log)[0].reply(), "old reply");
  int recovered = 0;
  ASSERT_TRUE(journal_
                  ->ForEachUnfinished([&](const v1::Call& call) {
                    ++recovered;
                    if (call.envelope().cid() == active) {
                      EXPECT_EQ(call.envelope().payload(), "payload of " + active);
                    } else {
                      EXPECT_EQ(call.completion().reply(), "old reply");
                    }
                  })
                  .ok());
  EXPECT_EQ(recovered, 2);

  // Rewrites split the records; reads give the same calls.
  ASSERT_TRUE(journal_->Complete(active, Succeeded("new reply"), v1::DELIVERY_STATE_NONE).ok());
  ASSERT_TRUE(journal_->SetDelivery(done, v1::DELIVERY_STATE_DELIVERED, nullptr).ok());
  got = journal_->GetCall(active);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->envelope().payload(), "payload of " + active);
  EXPECT_EQ(got->completion().reply(), "new reply");
  got = journal_->GetCall(done);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->envelope().payload(), "payload of " + done);
  EXPECT_EQ(got->completion().reply(), "old reply");
  Close();
  EXPECT_EQ(ReadRaw(dir_, std::string(journal_keys::kFormatKey)), "2");
  for (const std::string& cid : {active, done}) {
    const v1::Call record = ParseRawCall(ReadRaw(dir_, journal_keys::CallKey(cid)));
    EXPECT_EQ(record.envelope().payload(), "");
    EXPECT_EQ(record.completion().reply(), "");
    EXPECT_EQ(ReadRaw(dir_, journal_keys::PayloadKey(cid)), "payload of " + cid);
  }
  EXPECT_EQ(ReadRaw(dir_, journal_keys::ReplyKey(done)), "old reply");
}

TEST_F(JournalTest, AnUnknownFormatIsRefusedNamingTheFormatsThisBuildReads) {
  Close();
  WriteRaw(dir_, {{std::string(journal_keys::kFormatKey), "3"}});
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(Options());
  ASSERT_EQ(journal.status().code(), absl::StatusCode::kFailedPrecondition) << journal.status();
  EXPECT_THAT(journal.status().message(), HasSubstr("journal format \"3\" is not supported"));
  EXPECT_THAT(journal.status().message(), HasSubstr("formats 1 and 2"));
  EXPECT_THAT(journal.status().message(), HasSubstr("run that version or a newer one"));
  EXPECT_EQ(ReadRaw(dir_, std::string(journal_keys::kFormatKey)), "3");  // changed nothing
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

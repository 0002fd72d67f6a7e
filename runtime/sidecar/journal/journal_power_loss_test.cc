// Power loss, in the manner of LevelDB's fault-injection test: a random workload runs against the
// journal on a PowerLossFileSystem; at a random instant the test takes what a power loss would
// leave on disk (every file cut back to its last sync — or, in half the rounds, to a random point
// of its unsynced tail, tearing the last record — and files whose directory entry was never
// synced gone), opens a journal on that, and checks it against a history of everything written:
//
//   - the journal opens, and what it holds is the state after some prefix of the writes (RocksDB
//     recovers a point in time): the same prefix for every call, never a torn write;
//   - that prefix holds every acknowledged Accept and every Complete that returned — nothing the
//     journal reported durable is lost or changed;
//   - what it may lose is only what the README ("Only accepts and completions wait for an
//     fsync") says may be lost: attempt numbers (UpdateCall), delivery state (SetDelivery), the
//     deletion of casts (Delete), purges — and accepts that were never acknowledged;
//   - the indexes agree with the calls: completion log, pending count, recovery set, dead
//     letters and idempotency keys (a key names its call, or — once the call is gone — no other).
// Then the workload goes on from the recovered journal, and power fails again: several rounds
// per seed, fixed seeds.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "runtime/common/cid.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/journal/power_loss_file_system.h"

namespace callmesh::sidecar {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::MessageDifferencer;

constexpr int kRoundsPerSeed = 4;
// Purge deletes in mutations of at most 256 retention keys (journal.cc); the history below models
// one Purge as one write, so the workload keeps well fewer calls than that.
constexpr size_t kMaxLiveCalls = 150;

enum class WriteKind { kAccept, kUpdateCall, kComplete, kSetDelivery, kDelete, kPurge };

const char* KindName(WriteKind kind) {
  switch (kind) {
    case WriteKind::kAccept:
      return "Accept";
    case WriteKind::kUpdateCall:
      return "UpdateCall";
    case WriteKind::kComplete:
      return "Complete";
    case WriteKind::kSetDelivery:
      return "SetDelivery";
    case WriteKind::kDelete:
      return "Delete";
    case WriteKind::kPurge:
      return "Purge";
  }
  return "?";
}

// The writes that the README says wait for an fsync: their acknowledgement promises survival.
bool WaitsForFsync(WriteKind kind) {
  return kind == WriteKind::kAccept || kind == WriteKind::kComplete;
}

bool IsTerminal(v1::CallState state) {
  return state == v1::CALL_STATE_SUCCEEDED || state == v1::CALL_STATE_FAILED ||
         state == v1::CALL_STATE_CANCELLED || state == v1::CALL_STATE_EXPIRED;
}

using Record = std::optional<v1::Call>;  // nullopt: no such call

bool SameRecord(const Record& a, const Record& b) {
  if (!a.has_value() || !b.has_value()) return a.has_value() == b.has_value();
  return MessageDifferencer::Equals(*a, *b);
}

std::string Describe(const Record& record) {
  if (!record.has_value()) return "absent";
  return absl::StrCat(
      v1::CallState_Name(record->state()), " attempts=", record->attempts(),
      " delivery=", v1::DeliveryState_Name(record->callback_delivery()),
      record->has_completion() ? absl::StrCat(" sequence=", record->completion().sequence()) : "");
}

// Everything written since the journal was (re)opened: writes numbered 1, 2, ... in the order
// they were submitted (by one thread, so in the journal's order too), the record each call holds
// after every write that changed it, and which writes are known to be durable. Write 0 is the
// state the journal was opened with.
class History {
 public:
  void Reset(const std::vector<v1::Call>& calls) {
    absl::MutexLock lock(&mu_);
    versions_.clear();
    kinds_.assign(1, WriteKind::kAccept);
    acknowledged_.assign(1, true);
    durable_ = 0;
    frozen_ = false;
    for (const v1::Call& call : calls) versions_[call.envelope().cid()].push_back({0, call});
  }

  // Numbers a write about to be submitted.
  int64_t Submit(WriteKind kind) {
    absl::MutexLock lock(&mu_);
    kinds_.push_back(kind);
    acknowledged_.push_back(false);
    return static_cast<int64_t>(kinds_.size()) - 1;
  }
  void Record(const std::string& cid, int64_t write, ::callmesh::sidecar::Record record) {
    absl::MutexLock lock(&mu_);
    versions_[cid].push_back({write, std::move(record)});
  }
  // `write` succeeded; for a write that waits for an fsync, it and every write before it are
  // durable. Ignored once frozen (the power is out: nobody saw this acknowledgement).
  void Acknowledge(int64_t write) {
    absl::MutexLock lock(&mu_);
    if (frozen_) return;
    acknowledged_[write] = true;
    if (WaitsForFsync(kinds_[write])) durable_ = std::max(durable_, write);
  }
  // The power fails: no acknowledgement counts from now on.
  void Freeze() {
    absl::MutexLock lock(&mu_);
    frozen_ = true;
  }

  // The current record of `cid` (as the writer thread will see it once queued writes are done).
  ::callmesh::sidecar::Record Current(const std::string& cid) {
    absl::MutexLock lock(&mu_);
    auto it = versions_.find(cid);
    if (it == versions_.end()) return std::nullopt;
    return it->second.back().record;
  }
  std::vector<v1::Call> Live() {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Call> live;
    for (const auto& [cid, versions] : versions_) {
      if (versions.back().record.has_value()) live.push_back(*versions.back().record);
    }
    return live;
  }
  // The idempotency key of every call ever written that has one, by CID.
  std::map<std::string, std::string> Keys() {
    absl::MutexLock lock(&mu_);
    std::map<std::string, std::string> keys;
    for (const auto& [cid, versions] : versions_) {
      for (const Version& version : versions) {
        if (version.record.has_value() && !version.record->envelope().idempotency_key().empty()) {
          keys[cid] = version.record->envelope().idempotency_key();
        }
      }
    }
    return keys;
  }

  // What is lost when the journal recovered the state after write `cut`.
  struct Verdict {
    bool consistent = false;
    int64_t cut = -1;  // the latest prefix every call agrees with
    std::string explanation;
    std::map<std::string, int> lost;             // lost writes by kind
    std::vector<std::string> lost_acknowledged;  // acknowledged writes that waited for an fsync
  };

  // Finds a prefix of the writes, no shorter than the durable ones, whose state is exactly
  // `recovered` (by CID) — and says which writes it leaves out.
  Verdict Judge(const std::map<std::string, v1::Call>& recovered) {
    absl::MutexLock lock(&mu_);
    const int64_t last = static_cast<int64_t>(kinds_.size()) - 1;
    Verdict verdict;
    // possible[c - durable_]: the state after write c matches every call checked so far.
    std::vector<bool> possible(static_cast<size_t>(last - durable_ + 1), true);
    std::set<std::string> cids;
    for (const auto& entry : versions_) cids.insert(entry.first);
    for (const auto& entry : recovered) cids.insert(entry.first);
    for (const std::string& cid : cids) {
      auto found = recovered.find(cid);
      const ::callmesh::sidecar::Record got =
          found == recovered.end() ? std::nullopt : std::make_optional(found->second);
      bool any = false;
      for (int64_t c = durable_; c <= last; ++c) {
        const bool match = SameRecord(got, At(cid, c));
        possible[c - durable_] = possible[c - durable_] && match;
        any = any || match;
      }
      if (!any) {
        absl::StrAppend(&verdict.explanation, "call ", cid, " recovered as ", Describe(got),
                        ", which it never was after write ", durable_,
                        " (the last one acknowledged as durable); its history:");
        auto history = versions_.find(cid);
        if (history == versions_.end()) {
          absl::StrAppend(&verdict.explanation, " none (never written)");
        } else {
          for (const Version& version : history->second) {
            absl::StrAppend(&verdict.explanation, " [write ", version.write, " ",
                            KindName(kinds_[version.write]), ": ", Describe(version.record), "]");
          }
        }
        absl::StrAppend(&verdict.explanation, "\n");
      }
    }
    for (int64_t c = last; c >= durable_; --c) {
      if (possible[c - durable_]) {
        verdict.cut = c;
        break;
      }
    }
    verdict.consistent = verdict.cut >= 0;
    if (!verdict.consistent && verdict.explanation.empty()) {
      verdict.explanation =
          "every call matches some state, but no single prefix of the writes matches them all "
          "(a torn or reordered recovery)";
    }
    for (int64_t w = std::max<int64_t>(verdict.cut, durable_) + 1; w <= last; ++w) {
      ++verdict.lost[KindName(kinds_[w])];
      if (acknowledged_[w] && WaitsForFsync(kinds_[w])) {
        verdict.lost_acknowledged.push_back(absl::StrCat(KindName(kinds_[w]), " #", w));
      }
    }
    return verdict;
  }

  int64_t durable() {
    absl::MutexLock lock(&mu_);
    return durable_;
  }

 private:
  struct Version {
    int64_t write;
    ::callmesh::sidecar::Record record;
  };
  // The record of `cid` after write `c`.
  ::callmesh::sidecar::Record At(const std::string& cid, int64_t c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = versions_.find(cid);
    if (it == versions_.end()) return std::nullopt;
    ::callmesh::sidecar::Record record;
    for (const Version& version : it->second) {
      if (version.write > c) break;
      record = version.record;
    }
    return record;
  }

  absl::Mutex mu_;
  std::map<std::string, std::vector<Version>> versions_ ABSL_GUARDED_BY(mu_);
  std::vector<WriteKind> kinds_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> acknowledged_ ABSL_GUARDED_BY(mu_);
  int64_t durable_ ABSL_GUARDED_BY(mu_) = 0;
  bool frozen_ ABSL_GUARDED_BY(mu_) = false;
};

class JournalPowerLoss : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = absl::StrCat(test->test_suite_name(), ".", test->name());
    std::replace(name.begin(), name.end(), '/', '.');
    base_ = (fs::path(::testing::TempDir()) / name).string();
    fs::remove_all(base_);
    fs::create_directories(base_);
    random_.seed(static_cast<uint32_t>(GetParam()));
    cids_ = std::make_unique<CidGenerator>([this] { return absl::ToUnixMillis(Now()); },
                                           static_cast<uint64_t>(GetParam()));
  }

  absl::Time Now() {
    absl::MutexLock lock(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&clock_mu_);
    now_ += d;
  }

  JournalOptions Options(const std::string& dir, rocksdb::Env* env) {
    JournalOptions options;
    options.dir = dir;
    options.sync = true;
    // Small memtables: table files, compactions and MANIFEST updates happen within a round.
    options.memtable_bytes = 64 << 10;
    options.clock = [this] { return Now(); };
    options.env = env;
    return options;
  }

  int Uniform(int low, int high) { return std::uniform_int_distribution<int>(low, high)(random_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(random_); }
  template <typename T>
  const T& Pick(const std::vector<T>& from) {
    return from[static_cast<size_t>(Uniform(0, static_cast<int>(from.size()) - 1))];
  }

  v1::CallEnvelope NewEnvelope(bool with_key) {
    v1::CallEnvelope envelope;
    envelope.set_cid(cids_->Next());
    envelope.set_kind(Chance(0.2) ? v1::CALL_KIND_CAST : v1::CALL_KIND_INVOKE_ASYNC);
    envelope.set_service(Chance(0.5) ? "greeter" : "billing");
    envelope.set_method("helloworld.Greeter/SayHello");
    std::string payload(static_cast<size_t>(Uniform(0, 1500)), '\0');
    for (char& c : payload) c = static_cast<char>(random_());
    envelope.set_payload(std::move(payload));
    envelope.set_source("app");
    if (Chance(0.5)) envelope.set_callback("app-async-callback");
    if (with_key) envelope.set_idempotency_key(absl::StrCat("key-", envelope.cid()));
    (*envelope.mutable_headers())["x-round"] = std::to_string(round_);
    *envelope.mutable_accepted_at() = ToProtoTimestamp(Now());
    return envelope;
  }

  // The record the contract says Accept stores.
  static v1::Call Accepted(const v1::CallEnvelope& envelope) {
    v1::Call call;
    call.set_state(v1::CALL_STATE_ACCEPTED);
    *call.mutable_accepted_at() = envelope.accepted_at();
    call.set_callback(envelope.callback());
    *call.mutable_envelope() = envelope;
    return call;
  }

  // Reads back `cid` after a write; the record is what the history keeps.
  Record ReadBack(const std::string& cid) {
    absl::StatusOr<v1::Call> call = journal_->GetCall(cid);
    if (call.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
    EXPECT_TRUE(call.ok()) << call.status();
    return call.ok() ? std::make_optional(*call) : std::nullopt;
  }

  void AcceptAsync() {
    v1::CallEnvelope envelope = NewEnvelope(Chance(0.3));
    const std::string cid = envelope.cid();
    const int64_t write = history_.Submit(WriteKind::kAccept);
    history_.Record(cid, write, Accepted(envelope));
    journal_->Accept(std::move(envelope),
                     [this, write, cid](absl::StatusOr<Journal::AcceptResult> result) {
                       EXPECT_TRUE(result.ok() && !result->deduplicated && result->cid == cid)
                           << (result.ok() ? result->cid : result.status().ToString());
                       if (result.ok()) history_.Acknowledge(write);
                     });
  }

  // Sometimes (if `may_deduplicate`) with the key of a live call: deduplicated, nothing written.
  void AcceptSync(bool may_deduplicate) {
    std::vector<std::string> keys;
    for (const v1::Call& call : history_.Live()) {
      if (!call.envelope().idempotency_key().empty()) {
        keys.push_back(call.envelope().idempotency_key());
      }
    }
    if (may_deduplicate && !keys.empty() && Chance(0.3)) {
      v1::CallEnvelope envelope = NewEnvelope(false);
      envelope.set_idempotency_key(Pick(keys));
      absl::StatusOr<Journal::AcceptResult> result = journal_->AcceptSync(envelope);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_TRUE(result->deduplicated) << envelope.idempotency_key();
      return;
    }
    v1::CallEnvelope envelope = NewEnvelope(Chance(0.3));
    const int64_t write = history_.Submit(WriteKind::kAccept);
    history_.Record(envelope.cid(), write, Accepted(envelope));
    absl::StatusOr<Journal::AcceptResult> result = journal_->AcceptSync(envelope);
    ASSERT_TRUE(result.ok()) << result.status();
    ASSERT_FALSE(result->deduplicated);
    history_.Acknowledge(write);
  }

  std::vector<v1::Call> LiveWhere(const std::function<bool(const v1::Call&)>& pred) {
    std::vector<v1::Call> out;
    for (v1::Call& call : history_.Live()) {
      if (pred(call)) out.push_back(std::move(call));
    }
    return out;
  }

  void UpdateSomeCall() {
    std::vector<v1::Call> open =
        LiveWhere([](const v1::Call& call) { return !IsTerminal(call.state()); });
    if (open.empty()) return;
    v1::Call call = Pick(open);
    call.mutable_envelope()->clear_payload();
    call.set_state(v1::CALL_STATE_RUNNING);
    call.set_attempts(call.attempts() + 1);
    *call.mutable_started_at() = ToProtoTimestamp(Now());
    call.set_last_status_code(Uniform(0, 16));
    call.set_last_status_message(absl::StrCat("attempt ", call.attempts()));
    *call.mutable_next_attempt_at() = ToProtoTimestamp(Now() + absl::Seconds(Uniform(1, 60)));
    const std::string cid = call.envelope().cid();
    const int64_t write = history_.Submit(WriteKind::kUpdateCall);
    const absl::Status updated = journal_->UpdateCall(call);
    ASSERT_TRUE(updated.ok()) << updated;
    history_.Acknowledge(write);
    history_.Record(cid, write, ReadBack(cid));
  }

  void CompleteSomeCall() {
    std::vector<v1::Call> open =
        LiveWhere([](const v1::Call& call) { return !IsTerminal(call.state()); });
    if (open.empty()) return;
    const v1::Call& call = Pick(open);
    const std::string cid = call.envelope().cid();
    v1::Completion outcome;
    static const v1::CallState kOutcomes[] = {v1::CALL_STATE_SUCCEEDED, v1::CALL_STATE_FAILED,
                                              v1::CALL_STATE_CANCELLED, v1::CALL_STATE_EXPIRED};
    outcome.set_state(kOutcomes[Uniform(0, 3)]);
    outcome.set_reply(absl::StrCat("reply of ", cid));
    outcome.set_status_code(Uniform(0, 16));
    const v1::DeliveryState delivery = !call.callback().empty() && Chance(0.8)
                                           ? v1::DELIVERY_STATE_PENDING
                                           : v1::DELIVERY_STATE_NONE;
    const int64_t write = history_.Submit(WriteKind::kComplete);
    absl::StatusOr<v1::Completion> completion = journal_->Complete(cid, outcome, delivery);
    ASSERT_TRUE(completion.ok()) << completion.status();
    history_.Acknowledge(write);
    history_.Record(cid, write, ReadBack(cid));
    last_acknowledged_sequence_ = std::max(last_acknowledged_sequence_, completion->sequence());
  }

  void SetSomeDelivery() {
    std::vector<v1::Call> owed = LiveWhere([](const v1::Call& call) {
      return call.callback_delivery() == v1::DELIVERY_STATE_PENDING ||
             call.callback_delivery() == v1::DELIVERY_STATE_DEAD_LETTERED;
    });
    if (owed.empty()) return;
    const std::string cid = Pick(owed).envelope().cid();
    const int64_t write = history_.Submit(WriteKind::kSetDelivery);
    absl::Status status;
    switch (Uniform(0, 2)) {
      case 0:
        status = journal_->SetDelivery(cid, v1::DELIVERY_STATE_DELIVERED, nullptr);
        break;
      case 1: {
        v1::DeadLetter letter;
        letter.set_delivery_attempts(static_cast<uint32_t>(Uniform(1, 9)));
        letter.set_last_status_code(14);
        letter.set_last_status_message("callback unreachable");
        status = journal_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, &letter);
        break;
      }
      default:  // a redrive (or PENDING again)
        status = journal_->SetDelivery(cid, v1::DELIVERY_STATE_PENDING, nullptr);
    }
    ASSERT_TRUE(status.ok()) << status;
    history_.Acknowledge(write);
    history_.Record(cid, write, ReadBack(cid));
  }

  void DeleteSomeCall() {
    std::vector<v1::Call> live = history_.Live();
    if (live.empty()) return;
    const std::string cid = Pick(live).envelope().cid();
    const int64_t write = history_.Submit(WriteKind::kDelete);
    ASSERT_TRUE(journal_->Delete(cid).ok());
    history_.Acknowledge(write);
    history_.Record(cid, write, std::nullopt);
  }

  void Purge() {
    Advance(absl::Minutes(Uniform(0, 180)));
    const int64_t write = history_.Submit(WriteKind::kPurge);
    absl::StatusOr<size_t> purged = journal_->Purge(Now(), absl::Hours(1));
    ASSERT_TRUE(purged.ok()) << purged.status();
    history_.Acknowledge(write);
    // Only results no longer owed to anyone may go (and only these are surely not still queued:
    // Purge need not wait for writes queued before it, such as accepts in flight).
    size_t gone = 0;
    for (const v1::Call& call : LiveWhere([](const v1::Call& call) {
           return IsTerminal(call.state()) &&
                  (call.callback_delivery() == v1::DELIVERY_STATE_NONE ||
                   call.callback_delivery() == v1::DELIVERY_STATE_DELIVERED);
         })) {
      const std::string& cid = call.envelope().cid();
      if (!ReadBack(cid).has_value()) {
        history_.Record(cid, write, std::nullopt);
        ++gone;
      }
    }
    EXPECT_EQ(gone, *purged);
  }

  // One round: open the journal on `dir` with a fresh PowerLossFileSystem, run a random
  // workload, cut the power into `after`. Returns what the power loss dropped; sets
  // `*must_drop` if the round ended with a write that no fsync covered.
  PowerLossFileSystem::Loss RunRound(const std::string& dir, const std::string& after,
                                     bool* must_drop) {
    auto file_system = std::make_shared<PowerLossFileSystem>();
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(file_system);
    absl::StatusOr<std::unique_ptr<Journal>> opened = Journal::Open(Options(dir, env.get()));
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return {};
    journal_ = std::move(*opened);
    std::vector<v1::Call> start;
    for (const auto& [cid, call] : ReadAll(*journal_)) start.push_back(call);
    history_.Reset(start);

    const int operations = Uniform(60, 160);
    for (int i = 0; i < operations && !HasFatalFailure(); ++i) {
      const bool room = history_.Live().size() < kMaxLiveCalls;
      const int dice = Uniform(0, 99);
      if (dice < 25) {
        if (room) AcceptAsync();
      } else if (dice < 35) {
        if (room) AcceptSync(/*may_deduplicate=*/true);
      } else if (dice < 55) {
        UpdateSomeCall();
      } else if (dice < 70) {
        CompleteSomeCall();
      } else if (dice < 85) {
        SetSomeDelivery();
      } else if (dice < 90 || !room) {
        DeleteSomeCall();
      } else if (dice < 95) {
        Purge();
      } else {
        Advance(absl::Seconds(Uniform(1, 600)));
      }
    }
    // The power fails after bookkeeping writes, and then either right after one that no fsync
    // covered, or with accepts in flight (which may or may not survive).
    for (int i = Uniform(0, 2); i > 0; --i) {
      switch (Uniform(0, 5)) {
        case 0:
        case 1:
          UpdateSomeCall();
          break;
        case 2:
        case 3:
          SetSomeDelivery();
          break;
        case 4:
          DeleteSomeCall();
          break;
        default:
          Purge();
      }
    }
    *must_drop = Chance(0.5);
    if (*must_drop) {
      if (LiveWhere([](const v1::Call& call) { return !IsTerminal(call.state()); }).empty()) {
        AcceptSync(/*may_deduplicate=*/false);
      }
      // The first may share a synced batch with accepts still queued (group commit); the second
      // is alone in its batch.
      UpdateSomeCall();
      UpdateSomeCall();
    } else {
      for (int i = Uniform(1, 4); i > 0 && history_.Live().size() < kMaxLiveCalls; --i) {
        AcceptAsync();
      }
    }
    history_.Freeze();
    // Half the time the disk wrote some of what was not synced too (never all of it): whole
    // records that were never acknowledged, and a torn last one.
    PowerLossFileSystem::UnsyncedKept torn;
    if (Chance(0.5)) {
      torn = [this](uint64_t unsynced) {
        return std::uniform_int_distribution<uint64_t>(0, unsynced - 1)(random_);
      };
    }
    absl::StatusOr<PowerLossFileSystem::Loss> loss =
        file_system->CopyDurableState(dir, after, torn);
    EXPECT_TRUE(loss.ok()) << loss.status();
    journal_.reset();  // finishes what was queued, on the old disk; before `env`
    return loss.ok() ? *loss : PowerLossFileSystem::Loss{};
  }

  static std::map<std::string, v1::Call> ReadAll(const Journal& journal) {
    std::map<std::string, v1::Call> calls;
    std::string token;
    do {
      auto page = journal.ListCalls({}, 1000, token);
      EXPECT_TRUE(page.ok()) << page.status();
      if (!page.ok()) break;
      for (const v1::Call& listed : page->first) {
        absl::StatusOr<v1::Call> call = journal.GetCall(listed.envelope().cid());
        EXPECT_TRUE(call.ok()) << call.status();
        if (call.ok()) calls[listed.envelope().cid()] = *call;
      }
      token = page->second;
    } while (!token.empty());
    return calls;
  }

  // Opens `dir` (what the power loss left) and checks it against the history.
  void CheckRecovered(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<Journal>> opened = Journal::Open(Options(dir, nullptr));
    ASSERT_TRUE(opened.ok()) << "the journal does not open after a power loss: " << opened.status();
    Journal& journal = **opened;
    const std::map<std::string, v1::Call> recovered = ReadAll(journal);

    History::Verdict verdict = history_.Judge(recovered);
    ASSERT_TRUE(verdict.consistent) << verdict.explanation;
    EXPECT_TRUE(verdict.lost_acknowledged.empty())
        << "lost acknowledged writes that wait for an fsync: "
        << absl::StrJoin(verdict.lost_acknowledged, ", ");
    for (const auto& [kind, count] : verdict.lost) lost_[kind] += count;

    // The completion log holds exactly the completions of the terminal calls, in order.
    std::vector<v1::Completion> want;
    size_t pending = 0;
    std::set<std::string> unfinished_want;
    std::set<std::string> dead_want;
    for (const auto& [cid, call] : recovered) {
      if (IsTerminal(call.state())) {
        want.push_back(call.completion());
        if (call.callback_delivery() == v1::DELIVERY_STATE_PENDING) unfinished_want.insert(cid);
        if (call.callback_delivery() == v1::DELIVERY_STATE_DEAD_LETTERED) dead_want.insert(cid);
      } else {
        ++pending;
        unfinished_want.insert(cid);
      }
    }
    std::sort(want.begin(), want.end(), [](const v1::Completion& a, const v1::Completion& b) {
      return a.sequence() < b.sequence();
    });
    absl::StatusOr<std::vector<v1::Completion>> log = journal.CompletionsAfter(0, 1 << 20);
    ASSERT_TRUE(log.ok()) << log.status();
    ASSERT_EQ(log->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_TRUE(MessageDifferencer::Equals((*log)[i], want[i])) << want[i].cid();
    }
    EXPECT_GE(journal.last_sequence(), last_acknowledged_sequence_);
    if (!want.empty()) {
      EXPECT_GE(journal.last_sequence(), want.back().sequence());
    }
    EXPECT_EQ(journal.pending_count(), pending);

    std::set<std::string> unfinished;
    ASSERT_TRUE(journal
                    .ForEachUnfinished(
                        [&](const v1::Call& call) { unfinished.insert(call.envelope().cid()); })
                    .ok());
    EXPECT_EQ(unfinished, unfinished_want);

    std::set<std::string> dead;
    auto letters = journal.ListDeadLetters(1000, "");
    ASSERT_TRUE(letters.ok()) << letters.status();
    for (const v1::DeadLetter& letter : letters->first) {
      dead.insert(letter.completion().cid());
      auto call = recovered.find(letter.completion().cid());
      if (call != recovered.end()) {
        EXPECT_TRUE(MessageDifferencer::Equals(letter.completion(), call->second.completion()));
      }
    }
    EXPECT_EQ(dead, dead_want);
    EXPECT_EQ(journal.dead_letter_count(), dead_want.size());

    // Idempotency keys: a key of a call that is there still names it; a key of a call that is
    // gone names no other call. (These accepts are durable writes on the recovered journal: the
    // next round starts with them.)
    for (const auto& [cid, key] : history_.Keys()) {
      v1::CallEnvelope again = NewEnvelope(false);
      again.set_idempotency_key(key);
      absl::StatusOr<Journal::AcceptResult> result = journal.AcceptSync(again);
      ASSERT_TRUE(result.ok()) << result.status();
      if (recovered.count(cid) != 0) {
        EXPECT_TRUE(result->deduplicated) << cid;
        EXPECT_EQ(result->cid, cid);
      } else if (result->deduplicated) {
        EXPECT_EQ(result->cid, cid) << "the key of call " << cid << " names another call";
      }
    }
  }

  std::string base_;
  std::mt19937 random_;
  std::unique_ptr<CidGenerator> cids_;
  absl::Mutex clock_mu_;
  absl::Time now_ ABSL_GUARDED_BY(clock_mu_) = absl::FromUnixSeconds(1'800'000'000);
  int round_ = 0;
  History history_;
  uint64_t last_acknowledged_sequence_ = 0;
  std::map<std::string, int> lost_;
  std::unique_ptr<Journal> journal_;
};

TEST_P(JournalPowerLoss, AcknowledgedCallsAndCompletionsSurviveAndOnlyBookkeepingIsLost) {
  std::string dir = (fs::path(base_) / "round-0").string();
  uint64_t bytes_dropped = 0;
  int files_vanished = 0;
  int table_files = 0;  // in the folders the power losses left
  for (round_ = 1; round_ <= kRoundsPerSeed && !HasFailure(); ++round_) {
    const std::string after = (fs::path(base_) / absl::StrCat("round-", round_)).string();
    bool must_drop = false;
    const PowerLossFileSystem::Loss loss = RunRound(dir, after, &must_drop);
    // The simulation must drop what no fsync covered.
    if (must_drop) {
      EXPECT_GT(loss.bytes_dropped + loss.files_vanished, 0u)
          << "round " << round_ << ": nothing dropped, though the last write was not synced";
    }
    bytes_dropped += loss.bytes_dropped;
    files_vanished += loss.files_vanished;
    for (const fs::directory_entry& entry : fs::directory_iterator(after)) {
      if (entry.path().extension() == ".sst") ++table_files;
    }
    SCOPED_TRACE(absl::StrCat("seed ", GetParam(), ", power loss ", round_));
    CheckRecovered(after);
    dir = after;
  }
  std::vector<std::string> lost;
  for (const auto& [kind, count] : lost_) lost.push_back(absl::StrCat(kind, " ", count));
  std::cout << "seed " << GetParam() << ": " << kRoundsPerSeed << " power losses dropped "
            << bytes_dropped << " unsynced bytes and " << files_vanished << " files ("
            << table_files << " table files were left); writes lost: "
            << (lost.empty() ? "none" : absl::StrJoin(lost, ", ")) << "\n";
}

INSTANTIATE_TEST_SUITE_P(Seeds, JournalPowerLoss, ::testing::Range(1, 9));

}  // namespace
}  // namespace callmesh::sidecar

#include "runtime/sidecar/journal/journal.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/db.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/options.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/write_batch_with_index.h"
#include "rocksdb/write_batch.h"
#include "runtime/common/cid.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/status_macros.h"
#include "runtime/common/thread_name.h"
#include "runtime/sidecar/calls/call_states.h"
#include "runtime/sidecar/journal/journal_keys.h"
#include "runtime/sidecar/journal/journal_records.h"
#include "runtime/sidecar/journal/spin_before_sleep.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

namespace keys = journal_keys;
using calls::DeliveryName;
using calls::IsTerminal;
using calls::StateName;
using journal_records::BadRecord;
using journal_records::NoSuchCall;
using journal_records::ParseCall;
using journal_records::ParseDeadLetter;
using journal_records::PrefixIterator;
using journal_records::ReadCall;
using journal_records::ReadError;
using journal_records::ScanUnfinished;
using journal_records::ScopedSnapshot;
using journal_records::ToSlice;
namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;
// Purge deletes in mutations of this many calls, so one purge never makes a huge batch.
constexpr size_t kPurgeChunk = 256;
// Estimated batch bytes of a mutation without a payload.
constexpr size_t kSmallMutationBytes = 512;

uint32_t NormalizePageSize(uint32_t page_size) {
  if (page_size == 0) return kDefaultPageSize;
  return std::min(page_size, kMaxPageSize);
}

// Page tokens are the CID of the last item of the previous page.
absl::Status ValidatePageToken(const std::string& page_token) {
  if (page_token.empty() || IsWellFormedCid(page_token)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("page_token: \"", keys::Printable(page_token),
                   "\" is not a next_page_token returned by this list (it should be a CID)"));
}

absl::Status OpenError(const std::string& dir, absl::string_view what, const rocksdb::Status& s) {
  const std::string message =
      absl::StrCat("journal directory ", dir, ": ", what, ": ", s.ToString());
  return s.IsCorruption() ? absl::DataLossError(message) : absl::FailedPreconditionError(message);
}

// Writes the layout version, fsync'd.
absl::Status WriteFormat(rocksdb::DB* db, const std::string& dir, absl::string_view what) {
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  const rocksdb::Status s =
      db->Put(write_options, ToSlice(keys::kFormatKey), ToSlice(keys::kFormatVersion));
  if (!s.ok()) return OpenError(dir, what, s);
  return absl::OkStatus();
}

// Checks the layout version (for a new journal, writes it). True for a journal of the previous
// format: Open upgrades it by writing the new version once everything else checked out (a journal
// it refuses is left as it was). Its records are read as they are and split at their next rewrite
// (journal_keys.h), and a build that knows only the previous format then refuses the journal
// instead of reading calls without their payloads.
absl::StatusOr<bool> CheckFormat(rocksdb::DB* db, const std::string& dir) {
  std::string format;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), ToSlice(keys::kFormatKey), &format);
  if (s.ok()) {
    if (format == keys::kFormatVersion) return false;
    if (format == keys::kPreviousFormatVersion) return true;
    return absl::FailedPreconditionError(absl::StrCat(
        "journal directory ", dir, ": journal format \"", keys::Printable(format),
        "\" is not supported (this build reads formats ", keys::kPreviousFormatVersion, " and ",
        keys::kFormatVersion,
        "); a callmeshd of a later version wrote it: run that version or a newer one"));
  }
  if (!s.IsNotFound()) return OpenError(dir, "cannot read the format key", s);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  if (!it->status().ok()) return OpenError(dir, "cannot read", it->status());
  if (it->Valid()) {
    return absl::FailedPreconditionError(absl::StrCat("journal directory ", dir,
                                                      ": holds a RocksDB database that is not a "
                                                      "callmesh journal (no m/format key)"));
  }
  CALLMESH_RETURN_IF_ERROR(WriteFormat(db, dir, "cannot initialize"));
  return false;
}

absl::StatusOr<uint64_t> LoadLastSequence(rocksdb::DB* db, const std::string& dir) {
  uint64_t last = 0;
  std::string stored;
  const rocksdb::Status s =
      db->Get(rocksdb::ReadOptions(), ToSlice(keys::kLastSequenceKey), &stored);
  if (s.ok()) {
    if (!keys::DecodeUint64(stored, &last)) {
      return BadRecord(dir, keys::kLastSequenceKey,
                       absl::StrCat("is not a decimal number: \"", keys::Printable(stored), "\""));
    }
  } else if (!s.IsNotFound()) {
    return ReadError(dir, keys::kLastSequenceKey, s);
  }
  // The newest completion log key too, in case m/last_sequence ever lags behind it.
  PrefixIterator it(db, keys::kSequencePrefix, nullptr);
  it->SeekToLast();
  if (it->Valid()) {
    uint64_t newest = 0;
    if (!keys::ParseSequenceKey(it->key().ToString(), &newest)) {
      return BadRecord(dir, it->key().ToString(), "is not a completion log key");
    }
    last = std::max(last, newest);
  }
  if (!it->status().ok()) return ReadError(dir, keys::kSequencePrefix, it->status());
  return last;
}

}  // namespace

JournalOptions JournalOptionsFromConfig(const v1::SidecarConfig& config) {
  JournalOptions options;
  options.dir = config.data_dir();
  options.sync = config.journal().durability() != v1::JournalConfig::NONE;
  options.spin_wait = FromProtoDuration(config.journal().spin_wait());
  return options;
}

// The batch being built by the writer thread: reads see the journal plus the mutations already
// in the batch; each mutation's writes can be rolled back on its own.
class Journal::Batch {
 public:
  Batch(rocksdb::DB* db, const Journal& journal, uint64_t last_sequence)
      : db_(db),
        journal_(journal),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        first_sequence_(last_sequence),
        sequence_(last_sequence) {}

  const std::string& dir() const { return journal_.options_.dir; }
  absl::Time Now() const { return journal_.Now(); }

  // The value at `key`, nullopt if absent.
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) {
    std::string value;
    const rocksdb::Status s = batch_.GetFromBatchAndDB(db_, rocksdb::ReadOptions(), key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return ReadError(dir(), key, s);
    return value;
  }

  // The call's state at c/<cid>, without the payload and the reply that have keys of their own
  // (journal_keys.h); NOT_FOUND "no call with CID <cid>" if absent.
  absl::StatusOr<v1::Call> GetCall(absl::string_view cid) {
    CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> bytes, Get(keys::CallKey(cid)));
    if (!bytes.has_value()) return NoSuchCall(cid);
    return ParseCall(dir(), cid, *bytes);
  }

  void Put(const std::string& key, const std::string& value) { Record(batch_.Put(key, value)); }
  // Writes the call's state to c/<cid>, and moves a non-empty request payload and reply out of
  // `call` to b/<cid> and o/<cid> (journal_keys.h): afterwards `call` holds neither. Records read
  // back by GetCall carry neither of format "2", so a rewrite writes only the state; a format "1"
  // record is split by its first rewrite.
  void PutCall(v1::Call& call) {
    const std::string& cid = call.envelope().cid();
    MoveToOwnKey(keys::PayloadKey(cid), *call.mutable_envelope()->mutable_payload());
    if (call.has_completion()) {
      MoveToOwnKey(keys::ReplyKey(cid), *call.mutable_completion()->mutable_reply());
    }
    Put(keys::CallKey(cid), call.SerializeAsString());
  }
  // Deletes every key of the call's record (c/, b/, o/). b/ and o/ are deleted whether or not
  // they were written (an empty payload or reply has none): a read to find out would cost more
  // than the tombstone.
  void DeleteCall(absl::string_view cid) {
    Delete(keys::CallKey(cid));
    Delete(keys::PayloadKey(cid));
    Delete(keys::ReplyKey(cid));
  }
  void Delete(const std::string& key) { Record(batch_.Delete(key)); }

  // Drops the mapping of `envelope`'s idempotency key (none if empty), scoped and, for a call
  // from before keys were scoped, unscoped, when it still names the call: a later call may own
  // the key by now.
  absl::Status ForgetIdempotencyKey(const v1::CallEnvelope& envelope) {
    if (envelope.idempotency_key().empty()) return absl::OkStatus();
    CALLMESH_RETURN_IF_ERROR(ForgetIndexKey(
        keys::ScopedIdempotencyKey(envelope.source(), envelope.idempotency_key()), envelope.cid()));
    return ForgetIndexKey(keys::IdempotencyKey(envelope.idempotency_key()), envelope.cid());
  }
  // The same for the value of a retention key of a deleted cast: its index key ("i/...") as
  // written since keys are scoped, or its raw idempotency key as written before.
  absl::Status ForgetRetainedIdempotencyKey(const std::string& value, const std::string& cid) {
    if (value.empty()) return absl::OkStatus();
    if (absl::StartsWith(value, keys::kIdempotencyPrefix)) {
      CALLMESH_RETURN_IF_ERROR(ForgetIndexKey(value, cid));
    }
    return ForgetIndexKey(keys::IdempotencyKey(value), cid);
  }
  absl::Status ForgetIndexKey(const std::string& key, const std::string& cid) {
    CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> owner, Get(key));
    if (owner.has_value() && *owner == cid) Delete(key);
    return absl::OkStatus();
  }

  // The next sequence of the completion log.
  uint64_t NextSequence() { return ++sequence_; }
  void AddPending(int64_t delta) { pending_delta_ += delta; }
  void AddDeadLetters(int64_t delta) { dead_letter_delta_ += delta; }
  void AddDelivered() { ++delivered_delta_; }

  // Brackets one mutation: Begin, then Commit if it succeeded or Rollback if not.
  void Begin() {
    batch_.SetSavePoint();
    saved_sequence_ = sequence_;
    saved_pending_delta_ = pending_delta_;
    saved_dead_letter_delta_ = dead_letter_delta_;
    saved_delivered_delta_ = delivered_delta_;
    status_ = absl::OkStatus();
  }
  // The mutation's writes stay; returns an error (and rolls back) if one of them failed.
  absl::Status Commit() {
    absl::Status status = std::exchange(status_, absl::OkStatus());
    if (!status.ok()) {
      Rollback();
      return status;
    }
    batch_.PopSavePoint();
    return absl::OkStatus();
  }
  void Rollback() {
    batch_.RollbackToSavePoint();
    sequence_ = saved_sequence_;
    pending_delta_ = saved_pending_delta_;
    dead_letter_delta_ = saved_dead_letter_delta_;
    delivered_delta_ = saved_delivered_delta_;
    status_ = absl::OkStatus();
  }

  // Adds the bookkeeping keys; call once after the last mutation.
  void Finish() {
    if (sequence_ != first_sequence_)
      Put(std::string(keys::kLastSequenceKey), keys::EncodeUint64(sequence_));
  }

  rocksdb::WriteBatch* write_batch() { return batch_.GetWriteBatch(); }
  bool empty() { return batch_.GetWriteBatch()->Count() == 0; }
  const absl::Status& status() const { return status_; }
  uint64_t sequence() const { return sequence_; }
  int64_t pending_delta() const { return pending_delta_; }
  int64_t dead_letter_delta() const { return dead_letter_delta_; }
  uint64_t delivered_delta() const { return delivered_delta_; }

 private:
  // Writes non-empty `bytes` to `key` and empties them.
  void MoveToOwnKey(const std::string& key, std::string& bytes) {
    if (bytes.empty()) return;
    Put(key, bytes);
    bytes.clear();
  }

  void Record(const rocksdb::Status& s) {
    if (!s.ok() && status_.ok()) {
      status_ = absl::InternalError(absl::StrCat("journal batch: ", s.ToString()));
    }
  }

  rocksdb::DB* const db_;
  const Journal& journal_;
  rocksdb::WriteBatchWithIndex batch_;
  const uint64_t first_sequence_;
  uint64_t sequence_;
  uint64_t saved_sequence_ = 0;
  int64_t pending_delta_ = 0;
  int64_t saved_pending_delta_ = 0;
  int64_t dead_letter_delta_ = 0;
  int64_t saved_dead_letter_delta_ = 0;
  uint64_t delivered_delta_ = 0;
  uint64_t saved_delivered_delta_ = 0;
  absl::Status status_;
};

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const JournalOptions& options) {
  const std::string& dir = options.dir;
  if (dir.empty()) {
    return absl::InvalidArgumentError("journal directory: empty path (set data_dir)");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("journal directory ", dir, ": cannot create it: ", ec.message()));
  }
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("journal directory ", dir, ": is not a directory"));
  }
  // RocksDB would say much the same, but naming a LOCK or CURRENT file instead of the folder.
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "journal directory ", dir, ": not readable and writable: ", std::strerror(errno)));
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.paranoid_checks = true;
  // A torn last record can only be a write that was never acknowledged; anything else is
  // corruption of acknowledged data, which must not be skipped silently (the default
  // kPointInTimeRecovery would drop everything after it).
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = 16 << 20;
  if (options.memtable_bytes != 0) db_options.write_buffer_size = options.memtable_bytes;
  if (options.env != nullptr) db_options.env = options.env;
  // Every key is a two-byte prefix ("c/", "p/", "s/", "r/", ...) followed by something that grows
  // with time (a UUIDv7, a sequence, microseconds), and a call's rewrites land near the newest
  // keys of their prefix: a memtable insert can start from where the last one of its prefix went
  // instead of descending the skip list from the top (measured: bench/README.md "Round four").
  db_options.memtable_insert_with_hint_prefix_extractor.reset(
      rocksdb::NewFixedPrefixTransform(keys::kPrefixBytes));
  // Most records are purged within the retention period, so the young levels are rewritten
  // soonest: compressing them spends CPU on bytes that are about to be dropped. Older levels
  // (results kept for a long retention) are still compressed.
  db_options.compression_per_level = {rocksdb::kNoCompression, rocksdb::kNoCompression,
                                      rocksdb::kSnappyCompression};
  rocksdb::BlockBasedTableOptions table_options;
  // Idempotency and CID lookups on the writer thread are mostly misses; a bloom filter keeps
  // them off the disk.
  table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));

  rocksdb::DB* raw_db = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(db_options, dir, &raw_db);
  if (!s.ok()) return OpenError(dir, "cannot open", s);
  std::unique_ptr<rocksdb::DB> db(raw_db);

  CALLMESH_ASSIGN_OR_RETURN(const bool upgrade, CheckFormat(db.get(), dir));
  if (options.verify_checksums_at_open) {
    const rocksdb::Status verified = db->VerifyChecksum();
    if (!verified.ok()) return OpenError(dir, "checksum verification failed", verified);
  }
  CALLMESH_ASSIGN_OR_RETURN(const uint64_t last_sequence, LoadLastSequence(db.get(), dir));
  size_t pending = 0;
  size_t delivery_pending = 0;
  CALLMESH_RETURN_IF_ERROR(ScanUnfinished(
      db.get(), dir,
      [&](const v1::Call& call) {
        if (IsTerminal(call.state())) {
          ++delivery_pending;
        } else {
          ++pending;
        }
      },
      journal_records::kCallStateOnly));
  size_t dead_letters = 0;
  {
    PrefixIterator it(db.get(), keys::kDeadLetterPrefix, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++dead_letters;
    if (!it->status().ok()) return ReadError(dir, keys::kDeadLetterPrefix, it->status());
  }
  if (upgrade) {
    spdlog::info("journal: upgrading {} from format {} to {}", dir,
                 std::string(keys::kPreviousFormatVersion), std::string(keys::kFormatVersion));
    CALLMESH_RETURN_IF_ERROR(WriteFormat(db.get(), dir, "cannot upgrade the format"));
  }
  spdlog::info(
      "journal: opened {} ({} calls pending, {} completions awaiting delivery, {} dead letters, "
      "last sequence {})",
      dir, pending, delivery_pending, dead_letters, last_sequence);
  return std::unique_ptr<Journal>(
      new Journal(options, std::move(db), last_sequence, pending, dead_letters));
}

Journal::Journal(JournalOptions options, std::unique_ptr<rocksdb::DB> db, uint64_t last_sequence,
                 size_t pending, size_t dead_letters)
    : options_(std::move(options)),
      db_(std::move(db)),
      last_sequence_(last_sequence),
      pending_(static_cast<int64_t>(pending)),
      dead_letters_(static_cast<int64_t>(dead_letters)) {
  writer_ = std::thread([this] {
    NameThisThread("journal-writer");
    WriterLoop();
  });
  done_thread_ = std::thread([this] {
    NameThisThread("journal-done");
    DoneLoop();
  });
}

Journal::~Journal() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  writer_.join();
  {
    absl::MutexLock lock(&done_mu_);
    done_closing_ = true;
  }
  done_thread_.join();  // after the writer: every result handed over is reported
  const rocksdb::Status s = db_->Close();
  if (!s.ok()) spdlog::warn("journal: closing {}: {}", options_.dir, s.ToString());
}

absl::Time Journal::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

void Journal::Submit(Mutation mutation) {
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      queue_.push_back(std::move(mutation));
      queued_.store(true, std::memory_order_release);
      return;
    }
  }
  mutation.finish(absl::UnavailableError(absl::StrCat("journal ", options_.dir, " is closed")));
}

absl::Status Journal::SubmitAndWait(std::function<absl::Status(Batch&)> apply, size_t bytes,
                                    bool sync, std::string cid) {
  Mutation mutation;
  mutation.bytes = bytes;
  mutation.sync = sync;
  mutation.cid = std::move(cid);
  mutation.apply = std::move(apply);
  return SubmitAndWait(std::move(mutation));
}

absl::Status Journal::SubmitAndWait(Mutation mutation) {
  if (OnJournalThread()) {
    return absl::FailedPreconditionError(
        "journal: a blocking method was called from a done callback (the journal's thread); it "
        "would wait for itself");
  }
  absl::Notification finished;
  absl::Status result;
  mutation.quick_finish = true;
  mutation.finish = [&](absl::Status status) {
    result = std::move(status);
    finished.Notify();
  };
  Submit(std::move(mutation));
  finished.WaitForNotification();
  return result;
}

void Journal::SubmitAsync(absl::StatusOr<Mutation> mutation,
                          std::function<void(absl::Status)> done) {
  if (!mutation.ok()) return done(mutation.status());
  mutation->finish = std::move(done);
  Submit(*std::move(mutation));
}

void Journal::WriterLoop() {
  std::vector<Mutation> mutations;
  SpinBeforeSleep spin(options_.spin_wait);
  while (true) {
    const SpinBeforeSleep::Clock::time_point ran_out = SpinBeforeSleep::Clock::now();
    spin.Spin([this] { return queued_.load(std::memory_order_acquire); });
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closing_; };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // closing, everything written
      size_t bytes = 0;
      while (!queue_.empty() && mutations.size() < options_.max_batch_ops &&
             (mutations.empty() || bytes + queue_.front().bytes <= options_.max_batch_bytes)) {
        bytes += queue_.front().bytes;
        mutations.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_.store(!queue_.empty(), std::memory_order_relaxed);
    }
    spin.WaitEnded(SpinBeforeSleep::Clock::now() - ran_out);
    WriteTaken(mutations);
    mutations.clear();
  }
}

void Journal::WriteTaken(std::vector<Mutation>& mutations) {
  // Bookkeeping writes move ahead of the durable ones unless an earlier mutation that stays
  // behind touches the same call (a call's writes keep their order: an async Accept followed by
  // an update of that call), or one of unknown reach (Purge) comes before them.
  std::vector<bool> ahead(mutations.size(), false);
  absl::flat_hash_set<absl::string_view> stayed;
  bool barrier = false;
  bool any_ahead = false;
  bool any_synced = false;
  for (size_t i = 0; i < mutations.size(); ++i) {
    const Mutation& mutation = mutations[i];
    if (!mutation.sync && !barrier && !mutation.cid.empty() && !stayed.contains(mutation.cid)) {
      ahead[i] = any_ahead = true;
      continue;
    }
    if (mutation.cid.empty()) {
      barrier = true;
    } else {
      stayed.insert(mutation.cid);
    }
    any_synced = any_synced || mutation.sync;
  }
  if (!options_.sync || !any_ahead || !any_synced) {
    WriteGroup(mutations);  // nothing waits for an fsync it does not need
    return;
  }
  std::vector<Mutation> first;
  std::vector<Mutation> then;
  for (size_t i = 0; i < mutations.size(); ++i) {
    (ahead[i] ? first : then).push_back(std::move(mutations[i]));
  }
  WriteGroup(first);
  WriteGroup(then);
}

bool Journal::OnJournalThread() const {
  const std::thread::id self = std::this_thread::get_id();
  return self == writer_.get_id() || self == done_thread_.get_id();
}

void Journal::DoneLoop() {
  std::deque<std::function<void()>> ready;
  while (true) {
    {
      absl::MutexLock lock(&done_mu_);
      auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(done_mu_) {
        return !done_queue_.empty() || done_closing_;
      };
      done_mu_.Await(absl::Condition(&has_work));
      if (done_queue_.empty()) return;  // closing, everything reported
      ready.swap(done_queue_);
    }
    for (std::function<void()>& done : ready) done();
    ready.clear();
  }
}

absl::StatusOr<bool> Journal::FlushIfIdle() {
  absl::MutexLock lock(&flush_mu_);
  const uint64_t writes = writes_.load();
  const bool idle = writes == writes_at_idle_check_;
  writes_at_idle_check_ = writes;
  if (!idle || writes == writes_at_flush_) return false;
  rocksdb::FlushOptions flush_options;
  flush_options.wait = true;
  if (const rocksdb::Status s = db_->Flush(flush_options); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("journal ", options_.dir, ": flushing the idle memtable: ", s.ToString()));
  }
  writes_at_flush_ = writes;
  return true;
}

size_t Journal::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void Journal::WriteGroup(std::vector<Mutation>& mutations) {
  writes_.fetch_add(mutations.size(), std::memory_order_relaxed);
  if (!healthy_.load()) {
    std::vector<absl::Status> failed(mutations.size(), write_error_);
    Report(mutations, failed);
    return;
  }
  Batch batch(db_.get(), *this, last_sequence_.load());
  std::vector<absl::Status> statuses;
  statuses.reserve(mutations.size());
  for (Mutation& mutation : mutations) {
    batch.Begin();
    absl::Status status = mutation.apply(batch);
    if (status.ok()) {
      status = batch.Commit();
    } else {
      batch.Rollback();
    }
    statuses.push_back(std::move(status));
  }
  batch.Finish();

  absl::Status written;
  if (!batch.status().ok()) {
    written = batch.status();
  } else if (!batch.empty()) {
    rocksdb::WriteOptions write_options;
    write_options.sync =
        options_.sync && std::any_of(mutations.begin(), mutations.end(),
                                     [](const Mutation& mutation) { return mutation.sync; });
    const auto write_started = std::chrono::steady_clock::now();
    const rocksdb::Status s = db_->Write(write_options, batch.write_batch());
    if (options_.on_batch_written) {
      options_.on_batch_written(mutations.size(),
                                absl::FromChrono(std::chrono::steady_clock::now() - write_started),
                                write_options.sync);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (write_options.sync) syncs_.fetch_add(1, std::memory_order_relaxed);
    uint64_t largest = largest_batch_.load(std::memory_order_relaxed);
    while (mutations.size() > largest &&
           !largest_batch_.compare_exchange_weak(largest, mutations.size())) {
    }
    if (s.ok()) {
      last_sequence_.store(batch.sequence());
      pending_.fetch_add(batch.pending_delta());
      dead_letters_.fetch_add(batch.dead_letter_delta());
      delivered_.fetch_add(batch.delivered_delta(), std::memory_order_relaxed);
    } else {
      written = absl::UnavailableError(
          absl::StrCat("journal write failed: ", options_.dir, ": ", s.ToString()));
    }
  }
  if (!written.ok()) {
    write_error_ = written;
    healthy_.store(false);
    spdlog::error("journal: {}; refusing every further write until restart",
                  std::string(written.message()));
  }
  for (absl::Status& status : statuses) {
    if (status.ok()) status = written;
  }
  Report(mutations, statuses);
}

void Journal::Report(std::vector<Mutation>& mutations, std::vector<absl::Status>& statuses) {
  std::vector<std::function<void()>> handed_over;
  for (size_t i = 0; i < mutations.size(); ++i) {
    if (mutations[i].quick_finish) {
      mutations[i].finish(std::move(statuses[i]));
    } else {
      handed_over.push_back(
          [finish = std::move(mutations[i].finish), status = std::move(statuses[i])]() mutable {
            finish(std::move(status));
          });
    }
  }
  if (handed_over.empty()) return;
  absl::MutexLock lock(&done_mu_);
  for (std::function<void()>& done : handed_over) done_queue_.push_back(std::move(done));
}

namespace {

// A SharedBatch over the writer thread's Batch.
template <typename Batch>
class SharedBatchOf final : public Journal::SharedBatch {
 public:
  explicit SharedBatchOf(Batch& batch) : batch_(batch) {}
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override {
    return batch_.Get(key);
  }
  void Put(const std::string& key, const std::string& value) override { batch_.Put(key, value); }
  void Delete(const std::string& key) override { batch_.Delete(key); }

 private:
  Batch& batch_;
};

}  // namespace

void Journal::SubmitShared(std::function<absl::Status(SharedBatch&)> apply, size_t bytes, bool sync,
                           std::function<void(absl::Status)> finish) {
  Mutation mutation;
  mutation.bytes = bytes + kSmallMutationBytes;
  mutation.sync = sync;
  mutation.apply = [apply = std::move(apply)](Batch& batch) {
    SharedBatchOf<Batch> shared(batch);
    return apply(shared);
  };
  mutation.finish = std::move(finish);
  Submit(std::move(mutation));
}

void Journal::Accept(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
                     std::function<void(absl::StatusOr<AcceptResult>)> done) {
  Submit(AcceptMutation(std::move(envelope), first_attempt, std::move(done)));
}

Journal::Mutation Journal::AcceptMutation(v1::CallEnvelope envelope,
                                          std::optional<FirstAttempt> first_attempt,
                                          std::function<void(absl::StatusOr<AcceptResult>)> done) {
  auto result = std::make_shared<AcceptResult>();
  Mutation mutation;
  mutation.bytes = envelope.ByteSizeLong() + kSmallMutationBytes;
  mutation.cid = envelope.cid();
  mutation.apply = [envelope = std::move(envelope), first_attempt,
                    result](Batch& batch) mutable -> absl::Status {
    const std::string cid = envelope.cid();
    if (cid.empty()) return absl::InvalidArgumentError("journal: envelope.cid is empty");
    const std::string& idempotency_key = envelope.idempotency_key();
    const std::string index_key = keys::ScopedIdempotencyKey(envelope.source(), idempotency_key);
    if (!idempotency_key.empty()) {
      CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> first, batch.Get(index_key));
      if (!first.has_value()) {
        // A key written before keys were scoped counts only for a call of the same source.
        CALLMESH_ASSIGN_OR_RETURN(first, batch.Get(keys::IdempotencyKey(idempotency_key)));
        if (first.has_value()) {
          absl::StatusOr<v1::Call> earlier = batch.GetCall(*first);
          if (!earlier.ok() || earlier->envelope().source() != envelope.source()) first.reset();
        }
      }
      if (first.has_value()) {
        result->cid = std::move(*first);
        result->deduplicated = true;
        return absl::OkStatus();
      }
    }
    CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> existing, batch.Get(keys::CallKey(cid)));
    if (existing.has_value()) {
      return absl::AlreadyExistsError(
          absl::StrCat("journal: a call with CID ", keys::Printable(cid), " is already journaled"));
    }
    if (!envelope.has_accepted_at())
      *envelope.mutable_accepted_at() = ToProtoTimestamp(batch.Now());
    v1::Call call;
    call.set_state(v1::CALL_STATE_ACCEPTED);
    if (first_attempt.has_value()) calls::BeginAttempt(first_attempt->started_at, &call);
    *call.mutable_accepted_at() = envelope.accepted_at();
    call.set_callback(envelope.callback());
    *call.mutable_envelope() = std::move(envelope);
    batch.PutCall(call);
    if (!call.envelope().idempotency_key().empty()) batch.Put(index_key, cid);
    batch.Put(keys::UnfinishedKey(cid), std::string(keys::kUnfinishedActive));
    batch.AddPending(1);
    result->cid = cid;
    result->deduplicated = false;
    return absl::OkStatus();
  };
  mutation.finish = [result, done = std::move(done)](absl::Status status) {
    if (status.ok()) {
      done(*result);
    } else {
      done(std::move(status));
    }
  };
  return mutation;
}

absl::StatusOr<Journal::AcceptResult> Journal::AcceptSync(v1::CallEnvelope envelope) {
  if (OnJournalThread()) {
    return absl::FailedPreconditionError(
        "journal: AcceptSync was called from a done callback (the journal's thread); it would "
        "wait for itself");
  }
  absl::Notification finished;
  absl::StatusOr<AcceptResult> result;
  Mutation mutation =
      AcceptMutation(std::move(envelope), std::nullopt, [&](absl::StatusOr<AcceptResult> r) {
        result = std::move(r);
        finished.Notify();
      });
  mutation.quick_finish = true;
  Submit(std::move(mutation));
  finished.WaitForNotification();
  return result;
}

absl::Status Journal::UpdateCall(const v1::Call& call) {
  CALLMESH_ASSIGN_OR_RETURN(Mutation mutation, UpdateCallMutation(call));
  return SubmitAndWait(std::move(mutation));
}

void Journal::UpdateCall(v1::Call call, std::function<void(absl::Status)> done) {
  SubmitAsync(UpdateCallMutation(std::move(call)), std::move(done));
}

absl::StatusOr<Journal::Mutation> Journal::UpdateCallMutation(v1::Call call) {
  const std::string& cid = call.envelope().cid();
  if (cid.empty()) return absl::InvalidArgumentError("journal: UpdateCall: envelope.cid is empty");
  if (call.state() != v1::CALL_STATE_ACCEPTED && call.state() != v1::CALL_STATE_RUNNING) {
    return absl::InvalidArgumentError(absl::StrCat(
        "journal: UpdateCall of call ", keys::Printable(cid), ": state ", StateName(call.state()),
        " is not ACCEPTED or RUNNING (terminal outcomes go through Complete)"));
  }
  Mutation mutation;
  mutation.bytes = kSmallMutationBytes;
  mutation.sync = false;
  mutation.cid = cid;
  mutation.apply = [call = std::move(call)](Batch& batch) -> absl::Status {
    const std::string& cid = call.envelope().cid();
    CALLMESH_ASSIGN_OR_RETURN(v1::Call stored, batch.GetCall(cid));
    if (IsTerminal(stored.state())) {
      return absl::FailedPreconditionError(absl::StrCat("call ", keys::Printable(cid),
                                                        " is already ", StateName(stored.state()),
                                                        "; a terminal call is never changed"));
    }
    calls::CopyMutableFields(call, &stored);
    batch.PutCall(stored);
    return absl::OkStatus();
  };
  return mutation;
}

absl::StatusOr<v1::Completion> Journal::Complete(const std::string& cid, v1::Completion completion,
                                                 v1::DeliveryState delivery) {
  auto stored = std::make_shared<v1::Completion>();
  CALLMESH_ASSIGN_OR_RETURN(Mutation mutation,
                            CompleteMutation(cid, std::move(completion), delivery, stored));
  CALLMESH_RETURN_IF_ERROR(SubmitAndWait(std::move(mutation)));
  return std::move(*stored);
}

void Journal::Complete(std::string cid, v1::Completion completion, v1::DeliveryState delivery,
                       std::function<void(absl::StatusOr<v1::Completion>)> done) {
  auto stored = std::make_shared<v1::Completion>();
  SubmitAsync(CompleteMutation(std::move(cid), std::move(completion), delivery, stored),
              [stored, done = std::move(done)](absl::Status status) {
                if (status.ok()) {
                  done(std::move(*stored));
                } else {
                  done(std::move(status));
                }
              });
}

absl::StatusOr<Journal::Mutation> Journal::CompleteMutation(
    std::string cid, v1::Completion completion, v1::DeliveryState delivery,
    std::shared_ptr<v1::Completion> stored) {
  if (cid.empty()) return absl::InvalidArgumentError("journal: Complete: empty CID");
  if (!IsTerminal(completion.state())) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal: Complete of call ", keys::Printable(cid), ": state ",
                     StateName(completion.state()), " is not terminal"));
  }
  if (!completion.cid().empty() && completion.cid() != cid) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal: Complete of call ", keys::Printable(cid),
                     ": completion.cid names another call, ", keys::Printable(completion.cid())));
  }
  if (delivery != v1::DELIVERY_STATE_NONE && delivery != v1::DELIVERY_STATE_PENDING) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal: Complete of call ", keys::Printable(cid), ": delivery ",
                     DeliveryName(delivery), " is not NONE or PENDING"));
  }
  Mutation mutation;
  mutation.bytes = completion.ByteSizeLong() + kSmallMutationBytes;
  mutation.sync = true;
  mutation.cid = cid;
  mutation.apply = [cid, completion = std::move(completion), delivery,
                    stored](Batch& batch) -> absl::Status {
    CALLMESH_ASSIGN_OR_RETURN(v1::Call call, batch.GetCall(cid));
    if (IsTerminal(call.state())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "call ", keys::Printable(cid), " is already ", StateName(call.state()), " (sequence ",
          call.completion().sequence(), "); its outcome is never changed"));
    }
    v1::Completion out = completion;
    const v1::CallEnvelope& envelope = call.envelope();
    out.set_cid(cid);
    out.set_service(envelope.service());
    out.set_method(envelope.method());
    out.set_source(envelope.source());
    out.set_idempotency_key(envelope.idempotency_key());
    out.set_parent_cid(envelope.parent_cid());
    *out.mutable_headers() = envelope.headers();
    *out.mutable_accepted_at() = call.accepted_at();
    if (out.attempts() == 0) out.set_attempts(call.attempts());
    if (!out.has_started_at() && call.has_started_at()) {
      *out.mutable_started_at() = call.started_at();
    }
    if (!out.has_completed_at()) *out.mutable_completed_at() = ToProtoTimestamp(batch.Now());
    out.set_sequence(batch.NextSequence());

    call.set_state(out.state());
    call.set_attempts(out.attempts());
    if (out.has_started_at()) *call.mutable_started_at() = out.started_at();
    *call.mutable_completed_at() = out.completed_at();
    call.clear_next_attempt_at();
    call.set_callback_delivery(delivery);
    *call.mutable_completion() = out;
    batch.PutCall(call);
    batch.Put(keys::SequenceKey(out.sequence()), cid);
    if (delivery == v1::DELIVERY_STATE_PENDING) {
      batch.Put(keys::UnfinishedKey(cid), std::string(keys::kUnfinishedDeliveryPending));
    } else {
      batch.Delete(keys::UnfinishedKey(cid));
      batch.Put(keys::RetentionKey(FromProtoTimestamp(out.completed_at()), cid), "");
    }
    batch.AddPending(-1);
    *stored = std::move(out);
    return absl::OkStatus();
  };
  return mutation;
}

absl::Status Journal::SetDelivery(const std::string& cid, v1::DeliveryState state,
                                  const v1::DeadLetter* dead_letter) {
  CALLMESH_ASSIGN_OR_RETURN(
      Mutation mutation,
      SetDeliveryMutation(
          cid, state, dead_letter == nullptr ? std::nullopt : std::make_optional(*dead_letter)));
  return SubmitAndWait(std::move(mutation));
}

void Journal::SetDelivery(std::string cid, v1::DeliveryState state,
                          std::optional<v1::DeadLetter> dead_letter,
                          std::function<void(absl::Status)> done) {
  SubmitAsync(SetDeliveryMutation(std::move(cid), state, std::move(dead_letter)), std::move(done));
}

absl::StatusOr<Journal::Mutation> Journal::SetDeliveryMutation(
    std::string cid, v1::DeliveryState state, std::optional<v1::DeadLetter> dead_letter) {
  if (cid.empty()) return absl::InvalidArgumentError("journal: SetDelivery: empty CID");
  const std::string what = absl::StrCat("journal: SetDelivery of call ", keys::Printable(cid));
  if (state != v1::DELIVERY_STATE_PENDING && state != v1::DELIVERY_STATE_DELIVERED &&
      state != v1::DELIVERY_STATE_DEAD_LETTERED) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": target state ", DeliveryName(state),
                                                   " is not PENDING, DELIVERED or DEAD_LETTERED"));
  }
  if ((state == v1::DELIVERY_STATE_DEAD_LETTERED) != dead_letter.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a dead letter is required with DEAD_LETTERED and only with it"));
  }
  if (dead_letter.has_value() && !dead_letter->completion().cid().empty() &&
      dead_letter->completion().cid() != cid) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the dead letter's completion names another call, ",
                     keys::Printable(dead_letter->completion().cid())));
  }
  Mutation mutation;
  mutation.bytes = kSmallMutationBytes;
  mutation.sync = false;
  mutation.cid = cid;
  mutation.apply = [cid, state,
                    dead_letter = std::move(dead_letter)](Batch& batch) -> absl::Status {
    CALLMESH_ASSIGN_OR_RETURN(v1::Call call, batch.GetCall(cid));
    if (!IsTerminal(call.state())) {
      return absl::FailedPreconditionError(
          absl::StrCat("call ", keys::Printable(cid), " is ", StateName(call.state()),
                       ", not terminal; it has no completion to deliver"));
    }
    const v1::DeliveryState current = call.callback_delivery();
    if (current == state && state != v1::DELIVERY_STATE_DEAD_LETTERED) {
      return absl::OkStatus();
    }
    if (current != v1::DELIVERY_STATE_PENDING && current != v1::DELIVERY_STATE_DEAD_LETTERED) {
      return absl::FailedPreconditionError(
          absl::StrCat("callback delivery of call ", keys::Printable(cid), " is ",
                       DeliveryName(current), "; it cannot become ", DeliveryName(state)));
    }
    call.set_callback_delivery(state);
    batch.PutCall(call);
    batch.AddDeadLetters((state == v1::DELIVERY_STATE_DEAD_LETTERED) -
                         (current == v1::DELIVERY_STATE_DEAD_LETTERED));
    switch (state) {
      case v1::DELIVERY_STATE_PENDING:
        batch.Put(keys::UnfinishedKey(cid), std::string(keys::kUnfinishedDeliveryPending));
        batch.Delete(keys::DeadLetterKey(cid));
        break;
      case v1::DELIVERY_STATE_DELIVERED:
        batch.AddDelivered();
        batch.Delete(keys::UnfinishedKey(cid));
        // d/<cid> exists exactly while the delivery is DEAD_LETTERED; a tombstone for a key that
        // was never written would still cost a memtable insert and compaction work.
        if (current == v1::DELIVERY_STATE_DEAD_LETTERED) batch.Delete(keys::DeadLetterKey(cid));
        batch.Put(keys::RetentionKey(batch.Now(), cid), "");
        break;
      default: {  // DEAD_LETTERED
        v1::DeadLetter record = *dead_letter;
        if (!record.has_completion() || record.completion().cid().empty()) {
          CALLMESH_RETURN_IF_ERROR(journal_records::JoinParts(
              [&batch](const std::string& key) { return batch.Get(key); },
              journal_records::kCallWithReply, call));
          *record.mutable_completion() = call.completion();
        }
        if (record.callback().empty()) record.set_callback(call.callback());
        if (!record.has_dead_lettered_at()) {
          *record.mutable_dead_lettered_at() = ToProtoTimestamp(batch.Now());
        }
        batch.Delete(keys::UnfinishedKey(cid));
        batch.Put(keys::DeadLetterKey(cid), record.SerializeAsString());
        break;
      }
    }
    return absl::OkStatus();
  };
  return mutation;
}

absl::Status Journal::Delete(const std::string& cid) {
  CALLMESH_ASSIGN_OR_RETURN(Mutation mutation, DeleteMutation(cid));
  return SubmitAndWait(std::move(mutation));
}

void Journal::Delete(std::string cid, std::function<void(absl::Status)> done) {
  SubmitAsync(DeleteMutation(std::move(cid)), std::move(done));
}

absl::StatusOr<Journal::Mutation> Journal::DeleteMutation(std::string cid) {
  if (cid.empty()) return absl::InvalidArgumentError("journal: Delete: empty CID");
  Mutation mutation;
  mutation.bytes = kSmallMutationBytes;
  mutation.sync = false;
  mutation.cid = cid;
  mutation.apply = [cid](Batch& batch) -> absl::Status {
    CALLMESH_ASSIGN_OR_RETURN(v1::Call call, batch.GetCall(cid));
    // The idempotency key outlives the call for the retention window, so that a retried
    // Cast with the same key (say, after its first submit's reply was lost) gets this CID
    // back instead of running again. A retention key whose value names the idempotency key
    // lets Purge drop it when the window ends.
    if (!call.envelope().idempotency_key().empty()) {
      batch.Put(
          keys::RetentionKey(batch.Now(), cid),
          keys::ScopedIdempotencyKey(call.envelope().source(), call.envelope().idempotency_key()));
    }
    if (call.completion().sequence() != 0) {
      batch.Delete(keys::SequenceKey(call.completion().sequence()));
    }
    if (call.callback_delivery() == v1::DELIVERY_STATE_NONE && call.has_completed_at()) {
      batch.Delete(keys::RetentionKey(FromProtoTimestamp(call.completed_at()), cid));
    }
    // A DELIVERED call's retention key (named by its delivery time, which the record does not
    // hold) is left behind; Purge drops it when its time comes.
    batch.DeleteCall(cid);
    batch.Delete(keys::UnfinishedKey(cid));
    batch.Delete(keys::DeadLetterKey(cid));
    if (!IsTerminal(call.state())) batch.AddPending(-1);
    if (call.callback_delivery() == v1::DELIVERY_STATE_DEAD_LETTERED) batch.AddDeadLetters(-1);
    return absl::OkStatus();
  };
  return mutation;
}

absl::StatusOr<v1::Call> Journal::GetCall(const std::string& cid) const {
  return ReadCall(db_.get(), rocksdb::ReadOptions(), options_.dir, cid);
}

absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> Journal::ListCalls(
    const ListFilter& filter, uint32_t page_size, const std::string& page_token) const {
  CALLMESH_RETURN_IF_ERROR(ValidatePageToken(page_token));
  page_size = NormalizePageSize(page_size);
  std::vector<v1::Call> calls;
  size_t page_bytes = 0;
  std::string next_token;
  ScopedSnapshot snapshot(db_.get());
  PrefixIterator it(db_.get(), keys::kCallPrefix, snapshot.get());
  const journal_records::KeyReader read =
      journal_records::DbReader(db_.get(), snapshot.read_options(), options_.dir);
  // Newest first: CIDs are time-ordered, so this is reverse key order from the page token.
  if (page_token.empty()) {
    it->SeekToLast();
  } else {
    const std::string start = keys::CallKey(page_token);
    it->SeekForPrev(start);
    if (it->Valid() && it->key() == start) it->Prev();
  }
  for (; it->Valid(); it->Prev()) {
    if (calls.size() == page_size || page_bytes >= kMaxListPageBytes) {
      next_token = calls.back().envelope().cid();
      break;
    }
    CALLMESH_ASSIGN_OR_RETURN(v1::Call call,
                              ParseCall(options_.dir, it.suffix(), it->value().ToString()));
    if (!filter.states.empty() && std::find(filter.states.begin(), filter.states.end(),
                                            call.state()) == filter.states.end()) {
      continue;
    }
    if (!filter.service.empty() && call.envelope().service() != filter.service) continue;
    if (!filter.source.empty() && call.envelope().source() != filter.source) continue;
    call.mutable_envelope()->clear_payload();  // inline in a format "1" record
    CALLMESH_RETURN_IF_ERROR(
        journal_records::JoinParts(read, journal_records::kCallWithReply, call));
    page_bytes += call.ByteSizeLong();
    calls.push_back(std::move(call));
  }
  if (!it->status().ok()) return ReadError(options_.dir, keys::kCallPrefix, it->status());
  return std::make_pair(std::move(calls), std::move(next_token));
}

absl::StatusOr<std::vector<v1::Completion>> Journal::CompletionsAfter(uint64_t after,
                                                                      size_t limit) const {
  std::vector<v1::Completion> completions;
  if (limit == 0 || after == UINT64_MAX) return completions;
  ScopedSnapshot snapshot(db_.get());
  PrefixIterator it(db_.get(), keys::kSequencePrefix, snapshot.get());
  for (it->Seek(keys::SequenceKey(after + 1)); it->Valid() && completions.size() < limit;
       it->Next()) {
    const std::string cid = it->value().ToString();
    absl::StatusOr<v1::Call> call = ReadCall(db_.get(), snapshot.read_options(), options_.dir, cid,
                                             journal_records::kCallWithReply);
    if (absl::IsNotFound(call.status())) {
      return BadRecord(options_.dir, it->key().ToString(),
                       absl::StrCat("completion log entry of CID ", keys::Printable(cid),
                                    " with no call record"));
    }
    if (!call.ok()) return call.status();
    completions.push_back(std::move(*call->mutable_completion()));
  }
  if (!it->status().ok()) return ReadError(options_.dir, keys::kSequencePrefix, it->status());
  return completions;
}

uint64_t Journal::last_sequence() const { return last_sequence_.load(); }

absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> Journal::ListDeadLetters(
    uint32_t page_size, const std::string& page_token) const {
  CALLMESH_RETURN_IF_ERROR(ValidatePageToken(page_token));
  page_size = NormalizePageSize(page_size);
  std::vector<v1::DeadLetter> dead_letters;
  size_t page_bytes = 0;
  std::string next_token;
  ScopedSnapshot snapshot(db_.get());
  PrefixIterator it(db_.get(), keys::kDeadLetterPrefix, snapshot.get());
  const std::string start = keys::DeadLetterKey(page_token);
  it->Seek(start);
  if (!page_token.empty() && it->Valid() && it->key() == start) it->Next();
  for (; it->Valid(); it->Next()) {
    if (dead_letters.size() == page_size || page_bytes >= kMaxListPageBytes) {
      next_token = dead_letters.back().completion().cid();
      break;
    }
    CALLMESH_ASSIGN_OR_RETURN(v1::DeadLetter dead_letter,
                              ParseDeadLetter(options_.dir, it.suffix(), it->value().ToString()));
    page_bytes += dead_letter.ByteSizeLong();
    dead_letters.push_back(std::move(dead_letter));
  }
  if (!it->status().ok()) return ReadError(options_.dir, keys::kDeadLetterPrefix, it->status());
  return std::make_pair(std::move(dead_letters), std::move(next_token));
}

absl::Status Journal::ForEachUnfinished(const std::function<void(const v1::Call&)>& fn) const {
  return ScanUnfinished(db_.get(), options_.dir, fn);
}

absl::StatusOr<size_t> Journal::Purge(absl::Time now, absl::Duration retention) {
  if (retention < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal: Purge: negative retention ", absl::FormatDuration(retention)));
  }
  const absl::Time cutoff = now - retention;
  if (cutoff < absl::UnixEpoch()) return 0;
  // Retention keys up to and including `cutoff`, oldest first.
  const std::string end =
      absl::StrCat(keys::kRetentionPrefix,
                   keys::EncodeUint64(static_cast<uint64_t>(absl::ToUnixMicros(cutoff)) + 1));
  size_t purged = 0;
  // (retention key, its value: "" or the idempotency key of a deleted cast)
  std::vector<std::pair<std::string, std::string>> chunk;
  auto flush = [&]() -> absl::Status {
    if (chunk.empty()) return absl::OkStatus();
    size_t chunk_purged = 0;
    const size_t chunk_bytes = kSmallMutationBytes * chunk.size();
    CALLMESH_RETURN_IF_ERROR(SubmitAndWait(
        [&](Batch& batch) -> absl::Status {
          chunk_purged = 0;
          for (const auto& [retention_key, retention_value] : chunk) {
            uint64_t micros = 0;
            std::string cid;
            if (!keys::ParseRetentionKey(retention_key, &micros, &cid)) {
              return BadRecord(batch.dir(), retention_key, "is not a retention key");
            }
            batch.Delete(retention_key);
            absl::StatusOr<v1::Call> call = batch.GetCall(cid);
            if (absl::IsNotFound(call.status())) {
              // Deleted since (a cast that ran): the value, if any, is its idempotency key,
              // kept until now.
              CALLMESH_RETURN_IF_ERROR(batch.ForgetRetainedIdempotencyKey(retention_value, cid));
              continue;
            }
            if (!call.ok()) return call.status();
            const v1::DeliveryState delivery = call->callback_delivery();
            if (!IsTerminal(call->state()) ||
                (delivery != v1::DELIVERY_STATE_NONE && delivery != v1::DELIVERY_STATE_DELIVERED)) {
              continue;
            }
            CALLMESH_RETURN_IF_ERROR(batch.ForgetIdempotencyKey(call->envelope()));
            if (call->completion().sequence() != 0) {
              batch.Delete(keys::SequenceKey(call->completion().sequence()));
            }
            batch.DeleteCall(cid);
            batch.Delete(keys::UnfinishedKey(cid));
            batch.Delete(keys::DeadLetterKey(cid));
            ++chunk_purged;
          }
          return absl::OkStatus();
        },
        chunk_bytes, /*sync=*/false));
    purged += chunk_purged;
    chunk.clear();
    return absl::OkStatus();
  };
  {
    ScopedSnapshot snapshot(db_.get());
    PrefixIterator it(db_.get(), keys::kRetentionPrefix, snapshot.get());
    for (it->SeekToFirst(); it->Valid() && it->key().compare(end) < 0; it->Next()) {
      chunk.emplace_back(it->key().ToString(), it->value().ToString());
      if (chunk.size() == kPurgeChunk) CALLMESH_RETURN_IF_ERROR(flush());
    }
    if (!it->status().ok()) return ReadError(options_.dir, keys::kRetentionPrefix, it->status());
  }
  CALLMESH_RETURN_IF_ERROR(flush());
  if (purged > 0) spdlog::debug("journal: purged {} calls", purged);
  return purged;
}

size_t Journal::pending_count() const {
  return static_cast<size_t>(std::max<int64_t>(0, pending_.load()));
}

size_t Journal::dead_letter_count() const {
  return static_cast<size_t>(std::max<int64_t>(0, dead_letters_.load()));
}

bool Journal::healthy() const { return healthy_.load(); }

Journal::Stats Journal::stats() const {
  Stats stats;
  stats.writes = writes_.load();
  stats.batches = batches_.load();
  stats.syncs = syncs_.load();
  stats.largest_batch = largest_batch_.load();
  stats.deliveries = delivered_.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace callmesh::sidecar

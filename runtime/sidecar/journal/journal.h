// The durable call journal of callmeshd: the CallStore (runtime/sidecar/store/call_store.h) on
// RocksDB — every async call and cast from acceptance to its one terminal outcome, the completion
// log that watchers resume from, and the dead letters.
//
//   absl::StatusOr<std::unique_ptr<Journal>> journal =
//       Journal::Open(JournalOptionsFromConfig(config));
//   if (!journal.ok()) return Fail(journal.status());  // names the directory and the cause
//   (*journal)->ForEachUnfinished([&](const v1::Call& call) { dispatcher.Resume(call); });
//
//   (*journal)->Accept(std::move(envelope), [reactor](absl::StatusOr<Journal::AcceptResult> r) {
//     reactor->Finish(r);  // runs on the done thread once the record is on disk
//   });
//   ...
//   absl::StatusOr<v1::Completion> outcome =
//       (*journal)->Complete(cid, std::move(completion), v1::DELIVERY_STATE_PENDING);
//
// Durability. Every mutation goes through one writer thread (group commit): it takes everything
// queued (up to JournalOptions::max_batch_ops / max_batch_bytes), checks each mutation against
// the journal plus the batch being built, writes the survivors as ONE rocksdb::WriteBatch with
// WriteOptions::sync = JournalOptions::sync, and only then reports each mutation's result. While
// it syncs, new mutations queue and form the next batch, so N concurrent submitters share far
// fewer than N fsyncs. The writer only writes: the `done` callbacks of Accept run afterwards, in
// order, on a second thread (the done thread), so that the next batch is written while they run;
// a blocking method only wakes its caller from the writer. The forms of UpdateCall, Complete and
// Delete that take a callback report on the done thread too, so a caller (the dispatcher) chains a
// call's writes without parking a thread on any of them. A mutation is all-or-nothing: either all
// its keys are in the batch or none. With `sync` a reported success of Accept/AcceptSync and
// Complete survives kill -9 and power loss; without, it survives kill -9 only. The bookkeeping
// writes — UpdateCall (attempt numbers, retry state), SetDelivery, Delete and Purge — never wait
// for an fsync (they are synced by the next batch that is): each survives kill -9, and losing one
// to power loss only repeats work that is at least once anyway (an attempt number, a callback
// delivery, a cast, a purge). This halves the fsyncs an async call costs. Nor do they wait for the
// fsync of the durable writes queued with them: of a group taken from the queue, the bookkeeping
// writes are written first (one WriteBatch without sync, reported at once), then the durable ones
// (one WriteBatch with sync). Every mutation of a group was submitted before any of them was
// reported, and one that touches a call written earlier in the group (say, an update right after
// an async Accept of that call), or follows a Purge, keeps its place; so the order is as valid
// as the queue's. Reads see a mutation once its result is
// reported.
//
// Failure. If RocksDB fails a write, every mutation of that batch reports UNAVAILABLE
// "journal write failed: ...", and the journal stays failed for the rest of its life: every
// later mutation fails fast with the same status and healthy() is false (durability honesty: a
// journal that could not write acknowledges nothing more; restart to recover). Reads keep
// working from what is on disk.
//
// Corruption. Open refuses a journal whose files do not check out or whose unfinished records do
// not parse (DATA_LOSS naming the file or key). Records read later that do not parse give
// DATA_LOSS naming the key. Nothing here crashes on bad bytes.
//
// Memory. No per-call state is kept in memory: idempotency keys, call states and the recovery
// set live in RocksDB (bloom-filtered point lookups on the writer thread), so memory does not
// grow with pending or retained calls beyond RocksDB's own caches and the write queue. The only
// in-memory state is pending_count(), last_sequence() and the health flag. RocksDB's share is
// bounded: two memtables of JournalOptions::memtable_bytes and its 8 MiB block cache.
//
// Key layout: see journal_keys.h.
//
// Thread-safety: every method may be called from any thread, except that the blocking methods
// (AcceptSync, UpdateCall, Complete, SetDelivery, Delete, Purge) must not be called from a `done`
// callback (the done thread): they return FAILED_PRECONDITION there instead of deadlocking.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/sidecar/store/call_store.h"

namespace rocksdb {
class DB;
class Env;
}  // namespace rocksdb

namespace callmesh::sidecar {

struct JournalOptions {
  // Folder of the RocksDB; created (with its parents) if missing. Required.
  std::string dir;
  // Fsync every batch before reporting its results (JournalConfig FSYNC). false = write to the OS
  // only (JournalConfig NONE): acknowledged calls can be lost on power loss or an OS crash.
  bool sync = true;
  // Verify the checksum of every block of every table file at Open. Reads the whole journal once
  // (about a second per GB) so that a bit-flipped file is refused at start rather than found by a
  // later read. The write-ahead log and the MANIFEST are always verified while they are replayed.
  bool verify_checksums_at_open = true;
  // How long the writer thread, once it has written everything queued, spins for the next
  // mutation before it sleeps, while mutations keep coming back within that time (see
  // spin_before_sleep.h): saves the wake-up of the writer on each write, for CPU. 0 = sleep at
  // once. The sidecar sets it from JournalConfig.spin_wait.
  absl::Duration spin_wait = absl::ZeroDuration();
  // Most mutations and bytes in one batch; the rest waits for the next one.
  size_t max_batch_ops = 1024;
  size_t max_batch_bytes = 32 << 20;
  // Time source for timestamps the journal fills in itself (accepted_at or completed_at when
  // unset, the start of retention on delivery). nullptr = absl::Now.
  std::function<absl::Time()> clock;
  // Bytes of writes RocksDB collects in memory before writing them to a table file
  // (write_buffer_size; RocksDB keeps at most two such memtables). 16 MiB rather than RocksDB's
  // 64 MiB: every call rewrites its state record several times, so under load the memtables fill
  // up to their bound, and 2 x 64 MiB is more than the rest of the sidecar uses. 0 = RocksDB's
  // default. Tests make it small so that table files, compactions and MANIFEST updates happen
  // with little data.
  size_t memtable_bytes = 16 << 20;
  // For fault-injection tests: the RocksDB environment to use (not owned; must outlive the
  // Journal). nullptr = the default (POSIX) environment.
  rocksdb::Env* env = nullptr;
  // Runs on the writer thread after each batch write with its mutations, the time the write took
  // and whether it was fsynced (for the metrics); must be quick. Empty = none.
  std::function<void(size_t mutations, absl::Duration took, bool synced)> on_batch_written;
};

// dir = config.data_dir(), sync unless config.journal().durability() == NONE.
JournalOptions JournalOptionsFromConfig(const v1::SidecarConfig& config);

class Journal final : public CallStore {
 public:
  // Opens or creates the journal at options.dir (RocksDB with create_if_missing and
  // paranoid_checks; a torn last WAL record, which only an unacknowledged write can leave, is
  // tolerated, any other WAL corruption is refused).
  // Loads pending_count() and last_sequence(), parses every unfinished record, and starts the
  // writer thread. Never crashes on a bad directory or bad files. Errors:
  //   INVALID_ARGUMENT  options.dir is empty.
  //   FAILED_PRECONDITION "journal directory <dir>: <cause>": the directory cannot be created,
  //                     read or written, is locked by another process, or is not a journal of
  //                     this format.
  //   DATA_LOSS         "journal directory <dir>: <cause>": RocksDB reports corruption (a file,
  //                     the MANIFEST, CURRENT, the WAL), or "journal record <key> in <dir>: ..."
  //                     for a record that does not parse or an index key with no record.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const JournalOptions& options);

  // Finishes every mutation queued so far (reporting results as usual), stops the writer thread
  // and closes the database. Mutations submitted while it runs fail with UNAVAILABLE.
  ~Journal() override;

  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // CallStore (see runtime/sidecar/store/call_store.h for each contract). Durable writes
  // (Accept, AcceptSync, Complete) are written with WriteOptions::sync = JournalOptions::sync;
  // bookkeeping writes (UpdateCall, SetDelivery, Delete, Purge) never ask for a sync and become
  // durable with the next batch that does. `done` of Accept runs on the done thread (after the
  // write, in the order of the writes), never on the caller's.
  using CallStore::Accept;
  void Accept(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
              std::function<void(absl::StatusOr<AcceptResult>)> done) override;
  absl::StatusOr<AcceptResult> AcceptSync(v1::CallEnvelope envelope) override;
  absl::Status UpdateCall(const v1::Call& call) override;
  absl::StatusOr<v1::Completion> Complete(const std::string& cid, v1::Completion completion,
                                          v1::DeliveryState delivery) override;
  absl::Status SetDelivery(const std::string& cid, v1::DeliveryState state,
                           const v1::DeadLetter* dead_letter) override;
  absl::Status Delete(const std::string& cid) override;
  void UpdateCall(v1::Call call, std::function<void(absl::Status)> done) override;
  void Complete(std::string cid, v1::Completion completion, v1::DeliveryState delivery,
                std::function<void(absl::StatusOr<v1::Completion>)> done) override;
  void Delete(std::string cid, std::function<void(absl::Status)> done) override;
  void SetDelivery(std::string cid, v1::DeliveryState state,
                   std::optional<v1::DeadLetter> dead_letter,
                   std::function<void(absl::Status)> done) override;
  // DATA_LOSS names the key: "journal record c/<cid> in <dir>: does not parse".
  absl::StatusOr<v1::Call> GetCall(const std::string& cid) const override;
  absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> ListCalls(
      const ListFilter& filter, uint32_t page_size, const std::string& page_token) const override;
  absl::StatusOr<std::vector<v1::Completion>> CompletionsAfter(uint64_t after,
                                                               size_t limit) const override;
  uint64_t last_sequence() const override;
  absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> ListDeadLetters(
      uint32_t page_size, const std::string& page_token) const override;
  // DATA_LOSS names the key for a record that does not parse or an index key with no record.
  absl::Status ForEachUnfinished(const std::function<void(const v1::Call&)>& fn) const override;
  // Deletes in mutations of a few hundred calls, so one purge never makes a huge batch.
  absl::StatusOr<size_t> Purge(absl::Time now, absl::Duration retention) override;
  size_t pending_count() const override;
  size_t dead_letter_count() const override;
  bool healthy() const override;
  // `batches` are RocksDB WriteBatches, `syncs` those written with WriteOptions::sync;
  // `deliveries` count from Open.
  Stats stats() const override;

  // Sharing the journal with another store (the topic log of publish/subscribe,
  // runtime/sidecar/pubsub): its records live in this RocksDB under key prefixes of their own
  // (journal_keys.h), and its writes join the same group commit, so a publish costs no fsync of
  // its own.
  //
  // The keys one shared mutation reads and writes: reads see the journal plus the batch being
  // built. Used only inside `apply`, on the writer thread.
  class SharedBatch {
   public:
    virtual absl::StatusOr<std::optional<std::string>> Get(const std::string& key) = 0;
    virtual void Put(const std::string& key, const std::string& value) = 0;
    virtual void Delete(const std::string& key) = 0;

   protected:
    ~SharedBatch() = default;
  };
  // Queues a mutation: `apply` runs on the writer thread with the batch (an error leaves nothing
  // of it in the batch), `finish` runs there after the batch is written, with `apply`'s error or
  // the write's status. With `sync` (a durable write) success means fsync'd when the journal
  // syncs; without, as the bookkeeping writes. Both must be quick and must not call blocking
  // methods of the journal. If the journal is closed, `finish` runs at once with UNAVAILABLE.
  void SubmitShared(std::function<absl::Status(SharedBatch&)> apply, size_t bytes, bool sync,
                    std::function<void(absl::Status)> finish);
  // The database, for reads of shared keys (a write is visible once its `finish` ran).
  rocksdb::DB* shared_db() const { return db_.get(); }
  const std::string& dir() const { return options_.dir; }
  // Mutations submitted and not yet taken by the writer (for tests and metrics).
  size_t queued() const;

  // Writes RocksDB's memtable to a table file if nothing was written since the previous call and
  // something since the last flush, so that an idle sidecar does not keep up to two memtables
  // (JournalOptions::memtable_bytes each) of long-purged records in memory. The sidecar calls it
  // on its purge tick. Returns whether it flushed; an error names the directory.
  absl::StatusOr<bool> FlushIfIdle();

 private:
  class Batch;
  struct Mutation {
    // Runs on the writer thread: checks against journal + batch, then writes into the batch.
    // An error leaves nothing of this mutation in the batch.
    std::function<absl::Status(Batch&)> apply;
    // Runs after the batch is written, with the mutation's own error or the batch's write
    // status: on the done thread, or on the writer thread if `quick_finish`.
    std::function<void(absl::Status)> finish;
    // `finish` only wakes a waiting caller: run it on the writer, sparing a thread hand-off.
    bool quick_finish = false;
    // The call it reads and writes; "" = unknown or several (it keeps its place in the queue).
    std::string cid;
    // Estimated bytes it adds to a batch (for JournalOptions::max_batch_bytes).
    size_t bytes = 0;
    // Whether its success must wait for an fsync (when the journal syncs at all).
    bool sync = true;
  };

  Journal(JournalOptions options, std::unique_ptr<rocksdb::DB> db, uint64_t last_sequence,
          size_t pending, size_t dead_letters);

  // The mutation of Accept, reporting to `done`.
  Mutation AcceptMutation(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
                          std::function<void(absl::StatusOr<AcceptResult>)> done);
  // The mutations of UpdateCall, Complete (its stored completion into `stored`), Delete and
  // SetDelivery, or
  // the INVALID_ARGUMENT that refuses them before they are queued.
  static absl::StatusOr<Mutation> UpdateCallMutation(v1::Call call);
  static absl::StatusOr<Mutation> CompleteMutation(std::string cid, v1::Completion completion,
                                                   v1::DeliveryState delivery,
                                                   std::shared_ptr<v1::Completion> stored);
  static absl::StatusOr<Mutation> DeleteMutation(std::string cid);
  static absl::StatusOr<Mutation> SetDeliveryMutation(std::string cid, v1::DeliveryState state,
                                                      std::optional<v1::DeadLetter> dead_letter);
  // Queues `mutation` for the writer thread.
  void Submit(Mutation mutation);
  // Queues `mutation`; its result goes to `done` on the done thread (a refused one's error at
  // once, on this thread).
  void SubmitAsync(absl::StatusOr<Mutation> mutation, std::function<void(absl::Status)> done);
  // Submit + wait (`cid` as in Mutation). FAILED_PRECONDITION when called on the journal's own
  // threads (from a done callback), where it would wait for itself.
  absl::Status SubmitAndWait(std::function<absl::Status(Batch&)> apply, size_t bytes,
                             bool sync = true, std::string cid = "");
  absl::Status SubmitAndWait(Mutation mutation);
  // True on the writer or the done thread.
  bool OnJournalThread() const;
  void WriterLoop();
  // Writes the group taken from the queue: the mutations that need no sync first, then the
  // others (see "Durability" above).
  void WriteTaken(std::vector<Mutation>& mutations);
  // Applies one group of mutations as one WriteBatch and reports their results.
  void WriteGroup(std::vector<Mutation>& mutations);
  // Reports each mutation's status: quick ones at once, the others through the done thread.
  void Report(std::vector<Mutation>& mutations, std::vector<absl::Status>& statuses);
  // Runs the done callbacks handed over by the writer, in order.
  void DoneLoop();
  absl::Time Now() const;

  const JournalOptions options_;
  const std::unique_ptr<rocksdb::DB> db_;

  mutable absl::Mutex mu_;
  std::deque<Mutation> queue_ ABSL_GUARDED_BY(mu_);
  // !queue_.empty(), written under mu_, read without it by the writer's spin (a hint: the writer
  // takes the queue under mu_).
  std::atomic<bool> queued_{false};
  bool closing_ ABSL_GUARDED_BY(mu_) = false;

  // Results for the done thread, in the order of the writes.
  absl::Mutex done_mu_;
  std::deque<std::function<void()>> done_queue_ ABSL_GUARDED_BY(done_mu_);
  bool done_closing_ ABSL_GUARDED_BY(done_mu_) = false;

  // Owned by the writer thread; read by anyone.
  std::atomic<uint64_t> last_sequence_;
  std::atomic<int64_t> pending_;
  std::atomic<int64_t> dead_letters_;
  std::atomic<uint64_t> delivered_{0};
  std::atomic<bool> healthy_{true};
  // Set once by the writer thread when healthy_ turns false; read by the writer thread only.
  absl::Status write_error_;

  std::atomic<uint64_t> writes_{0};
  // FlushIfIdle's view of writes_: at its previous call, and at its last flush.
  absl::Mutex flush_mu_;
  uint64_t writes_at_idle_check_ ABSL_GUARDED_BY(flush_mu_) = 0;
  uint64_t writes_at_flush_ ABSL_GUARDED_BY(flush_mu_) = 0;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> largest_batch_{0};

  std::thread writer_;
  std::thread done_thread_;
};

}  // namespace callmesh::sidecar

// The durable call journal of callmeshd: every async call and cast from acceptance to its one
// terminal outcome, the completion log that watchers resume from, and the dead letters, on RocksDB.
//
//   absl::StatusOr<std::unique_ptr<Journal>> journal =
//       Journal::Open(JournalOptionsFromConfig(config));
//   if (!journal.ok()) return Fail(journal.status());  // names the directory and the cause
//   (*journal)->ForEachUnfinished([&](const v1::Call& call) { dispatcher.Resume(call); });
//
//   (*journal)->Accept(std::move(envelope), [reactor](absl::StatusOr<Journal::AcceptResult> r) {
//     reactor->Finish(r);  // runs on the writer thread once the record is on disk
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
// fewer than N fsyncs. A mutation is all-or-nothing: either all its keys are in the batch or
// none. With `sync` a reported success of Accept/AcceptSync and Complete survives kill -9 and power
// loss; without, it survives kill -9 only. The bookkeeping writes — UpdateCall (attempt numbers,
// retry state), SetDelivery, Delete and Purge — never wait for an fsync (they are synced by the
// next batch that is): each survives kill -9, and losing one to power loss only repeats work
// that is at least once anyway (an attempt number, a callback delivery, a cast, a purge). This
// halves the fsyncs an async call costs. Reads see a mutation once its result is reported.
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
// in-memory state is pending_count(), last_sequence() and the health flag.
//
// Key layout: see journal_keys.h.
//
// Thread-safety: every method may be called from any thread, except that the blocking methods
// (AcceptSync, UpdateCall, Complete, SetDelivery, Delete, Purge) must not be called from a `done`
// callback (the writer thread): they return FAILED_PRECONDITION there instead of deadlocking.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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

namespace rocksdb {
class DB;
class Env;
}  // namespace rocksdb

namespace callmesh::sidecar {

// A page of ListCalls or ListDeadLetters ends once it holds this many bytes (it always holds at
// least one item), so that a page of calls with large results still fits in one gRPC message.
inline constexpr size_t kMaxListPageBytes = 1 << 20;

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
  // Most mutations and bytes in one batch; the rest waits for the next one.
  size_t max_batch_ops = 1024;
  size_t max_batch_bytes = 32 << 20;
  // Time source for timestamps the journal fills in itself (accepted_at or completed_at when
  // unset, the start of retention on delivery). nullptr = absl::Now.
  std::function<absl::Time()> clock;
  // For fault-injection tests: the RocksDB environment to use (not owned; must outlive the
  // Journal). nullptr = the default (POSIX) environment.
  rocksdb::Env* env = nullptr;
};

// SUCCEEDED, FAILED, CANCELLED or EXPIRED: an outcome, never changed once journaled.
bool IsTerminalState(v1::CallState state);

// dir = config.data_dir(), sync unless config.journal().durability() == NONE.
JournalOptions JournalOptionsFromConfig(const v1::SidecarConfig& config);

class Journal {
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
  ~Journal();

  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  struct AcceptResult {
    // The CID of the journaled call: the envelope's, or on deduplication the CID that first used
    // the idempotency key.
    std::string cid;
    bool deduplicated = false;
  };

  // Records a new call in state ACCEPTED: the envelope (with payload) as given, Call.accepted_at
  // = envelope.accepted_at (filled from the clock if unset), Call.callback = envelope.callback.
  // If envelope.idempotency_key is non-empty and already used by a journaled call (also one
  // earlier in the same batch), nothing is written and the first CID is returned with
  // deduplicated = true. Idempotency keys are global to the journal (one sidecar); they are
  // released when their call is purged or deleted.
  // `done` runs exactly once, on the writer thread, after the batch is on disk (or failed); it
  // must be quick and must not call the blocking methods. If the journal is already closed,
  // `done` runs at once on the calling thread. Results:
  //   OK                AcceptResult.
  //   INVALID_ARGUMENT  envelope.cid is empty.
  //   ALREADY_EXISTS    a call with this CID is already journaled (and no idempotency key
  //                     matched).
  //   UNAVAILABLE       "journal write failed: ..." (now or earlier), or the journal is closed.
  void Accept(v1::CallEnvelope envelope, std::function<void(absl::StatusOr<AcceptResult>)> done);
  // Accept, waiting for the result.
  absl::StatusOr<AcceptResult> AcceptSync(v1::CallEnvelope envelope);

  // Rewrites the mutable fields of a non-terminal call, identified by call.envelope().cid():
  // state (ACCEPTED or RUNNING), attempts, started_at, last_status_code, last_status_message,
  // next_attempt_at and callback (the resolved callback service). The stored envelope (with its
  // payload), accepted_at, completion and callback_delivery are kept: the envelope is immutable
  // once journaled, so `call` may come from a payload-less copy. Blocks until written (not
  // synced, see above). Errors:
  //   INVALID_ARGUMENT    empty CID, or call.state() is not ACCEPTED or RUNNING (terminal states
  //                       go through Complete).
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION the call is already terminal (its record is left unchanged).
  //   DATA_LOSS           the stored record does not parse.  UNAVAILABLE as for Accept.
  absl::Status UpdateCall(const v1::Call& call);

  // Makes a call terminal, once. `completion` carries the outcome: state (SUCCEEDED, FAILED,
  // CANCELLED or EXPIRED), reply, status_code, status_message, and optionally attempts,
  // started_at and completed_at (unset: the call's attempts and started_at, the clock's now).
  // The journal fills the rest from the stored call (cid, service, method, source, accepted_at,
  // idempotency_key, parent_cid, headers) and assigns the next sequence of the completion log
  // (> every sequence handed out before, also across restarts and purges). The call record takes
  // state, attempts, started_at, completed_at, the completion and callback_delivery = `delivery`;
  // next_attempt_at is cleared. Blocks until durable; returns the stored Completion.
  // Errors:
  //   INVALID_ARGUMENT    completion.state is not terminal, completion.cid names another call,
  //                       or `delivery` is not NONE or PENDING.
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION "call <cid> is already <STATE> (sequence N)": one outcome per CID, the
  //                       stored one stays untouched (GetCall returns it).
  //   DATA_LOSS, UNAVAILABLE as for UpdateCall.
  absl::StatusOr<v1::Completion> Complete(const std::string& cid, v1::Completion completion,
                                          v1::DeliveryState delivery);

  // Moves the callback delivery of a terminal call, atomically with its dead letter:
  //   PENDING        from PENDING or DEAD_LETTERED (a re-drive: the d/ record is deleted).
  //   DELIVERED      from PENDING or DEAD_LETTERED (the d/ record is deleted); final. Starts the
  //                  retention period of the result (see Purge).
  //   DEAD_LETTERED  from PENDING or DEAD_LETTERED, with `dead_letter` required: it is stored
  //                  under d/<cid>; its completion and callback are filled from the call if
  //                  unset.
  // Setting the current state again is allowed (DEAD_LETTERED replaces the record). Blocks until
  // written (not synced, see above). Errors:
  //   INVALID_ARGUMENT    another target state, `dead_letter` missing for DEAD_LETTERED or given
  //                       for another state, or its completion names another CID.
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION the call is not terminal, or its delivery is NONE (no callback) or
  //                       DELIVERED (final) and the target state differs.
  //   DATA_LOSS, UNAVAILABLE as for UpdateCall.
  absl::Status SetDelivery(const std::string& cid, v1::DeliveryState state,
                           const v1::DeadLetter* dead_letter);

  // Deletes a call outright, in any state, with its completion log entry, dead letter and
  // recovery entry. For casts, whose outcome is not kept. Its idempotency key (if it still maps to
  // this call) is kept for the retention window — Purge drops it with the results of that age — so
  // that a retried Cast with the same key is deduplicated to this CID instead of running again.
  // Blocks until written (not synced). Errors: NOT_FOUND, DATA_LOSS, UNAVAILABLE as for
  // UpdateCall.
  absl::Status Delete(const std::string& cid);

  // The stored call, payload included. Errors: NOT_FOUND "no call with CID <cid>"; DATA_LOSS
  // "journal record c/<cid> ...: does not parse"; UNAVAILABLE if RocksDB cannot read.
  absl::StatusOr<v1::Call> GetCall(const std::string& cid) const;

  struct ListFilter {
    // Any of these states; empty = all.
    std::vector<v1::CallState> states;
    // Exact envelope.service / envelope.source; empty = any.
    std::string service;
    std::string source;
  };
  // Calls matching `filter`, newest first (reverse CID order, CIDs being time-ordered), starting
  // after `page_token` ("" = from the newest). At most `page_size` calls (0 = 100, capped at 1000),
  // and a page ends once it holds kMaxListPageBytes (it always holds at least one call);
  // envelope.payload is cleared (completion.reply is kept). The second member is the next page
  // token: "" when the journal holds no further call, else an opaque string to pass back (the last
  // page may be empty). Errors: INVALID_ARGUMENT for a page token that is not one this list
  // returned; DATA_LOSS for a record that does not parse; UNAVAILABLE if RocksDB cannot read.
  absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> ListCalls(
      const ListFilter& filter, uint32_t page_size, const std::string& page_token) const;

  // The completions with sequence > `after`, in sequence order, at most `limit` (0 = none).
  // Purged completions are gone: a watcher that resumes after a purge sees only what is left.
  // Errors: DATA_LOSS, UNAVAILABLE as for ListCalls.
  absl::StatusOr<std::vector<v1::Completion>> CompletionsAfter(uint64_t after, size_t limit) const;

  // The highest sequence assigned so far (0 if none); monotonic across restarts and purges.
  uint64_t last_sequence() const;

  // Dead letters in CID order, paginated as ListCalls (page_size 0 = 100, capped at 1000, bytes
  // bounded by kMaxListPageBytes).
  absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> ListDeadLetters(
      uint32_t page_size, const std::string& page_token) const;

  // For recovery at start: calls `fn` (on this thread, in CID order, from one consistent
  // snapshot) with every non-terminal call and every terminal call whose callback delivery is
  // PENDING, payloads included. `fn` may call the journal. Stops at the first error:
  // DATA_LOSS naming the key for a record that does not parse or an index key with no record.
  absl::Status ForEachUnfinished(const std::function<void(const v1::Call&)>& fn) const;

  // Deletes every terminal call whose result is no longer owed to anyone and whose retention has
  // run out: delivery NONE with completed_at <= now - retention, or delivery DELIVERED with the
  // delivery time (journal clock at SetDelivery) <= now - retention. Their completion log,
  // idempotency and dead-letter keys go with them. Calls with delivery PENDING or DEAD_LETTERED
  // are kept however old. Work is proportional to what is purged. Returns how many calls were
  // deleted. Blocks until durable. Errors: INVALID_ARGUMENT for a negative retention; DATA_LOSS,
  // UNAVAILABLE as for UpdateCall.
  absl::StatusOr<size_t> Purge(absl::Time now, absl::Duration retention);

  // Calls accepted and not yet terminal (for backpressure: LimitsConfig.max_pending_calls).
  size_t pending_count() const;

  // Dead letters currently listed by ListDeadLetters.
  size_t dead_letter_count() const;

  // False once a write has failed (see Failure above); stays false until the process restarts.
  bool healthy() const;

  // Counters since Open, to see group commit at work: `writes` mutations processed by the writer
  // thread, `batches` WriteBatches applied to RocksDB, `syncs` of those written with sync.
  // A batch that ends up empty (every mutation deduplicated or refused) is not written.
  // `deliveries`: callback deliveries recorded (SetDelivery to DELIVERED) since Open.
  struct Stats {
    uint64_t writes = 0;
    uint64_t batches = 0;
    uint64_t syncs = 0;
    uint64_t largest_batch = 0;  // most mutations in one batch
    uint64_t deliveries = 0;
  };
  Stats stats() const;

 private:
  class Batch;
  struct Mutation {
    // Runs on the writer thread: checks against journal + batch, then writes into the batch.
    // An error leaves nothing of this mutation in the batch.
    std::function<absl::Status(Batch&)> apply;
    // Runs on the writer thread after the batch is written: the mutation's own error, or the
    // batch's write status.
    std::function<void(absl::Status)> finish;
    // Estimated bytes it adds to a batch (for JournalOptions::max_batch_bytes).
    size_t bytes = 0;
    // Whether its success must wait for an fsync (when the journal syncs at all).
    bool sync = true;
  };

  Journal(JournalOptions options, std::unique_ptr<rocksdb::DB> db, uint64_t last_sequence,
          size_t pending, size_t dead_letters);

  // Queues `mutation` for the writer thread.
  void Submit(Mutation mutation);
  // Submit + wait. FAILED_PRECONDITION when called on the writer thread.
  absl::Status SubmitAndWait(std::function<absl::Status(Batch&)> apply, size_t bytes,
                             bool sync = true);
  void WriterLoop();
  // Applies one group of mutations as one WriteBatch and reports their results.
  void WriteGroup(std::vector<Mutation>& mutations);
  absl::Time Now() const;

  const JournalOptions options_;
  const std::unique_ptr<rocksdb::DB> db_;

  absl::Mutex mu_;
  std::deque<Mutation> queue_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;

  // Owned by the writer thread; read by anyone.
  std::atomic<uint64_t> last_sequence_;
  std::atomic<int64_t> pending_;
  std::atomic<int64_t> dead_letters_;
  std::atomic<uint64_t> delivered_{0};
  std::atomic<bool> healthy_{true};
  // Set once by the writer thread when healthy_ turns false; read by the writer thread only.
  absl::Status write_error_;

  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> largest_batch_{0};

  std::thread writer_;
};

}  // namespace callmesh::sidecar

// CallStore: the durable record of the sidecar's async calls and casts — every call from
// acceptance to its one terminal outcome, the completion log that watchers resume from, and the
// dead letters of callback delivery. The seam between the call lifecycle (dispatcher, server,
// callback delivery, recovery, purge) and how calls are kept: the RocksDB Journal
// (runtime/sidecar/journal/journal.h) is the first implementation; a replicated one can follow.
// Every implementation passes the conformance suite in call_store_conformance.h.
//
//   CallStore& store = *journal;  // any implementation
//   store.ForEachUnfinished([&](const v1::Call& call) { dispatcher.Resume(call); });
//
//   store.Accept(std::move(envelope), [reactor](absl::StatusOr<CallStore::AcceptResult> r) {
//     reactor->Finish(r);  // runs once the call is durable (or refused)
//   });
//   ...
//   absl::StatusOr<v1::Completion> outcome =
//       store.Complete(cid, std::move(completion), v1::DELIVERY_STATE_PENDING);
//
// Durability. Two kinds of writes:
//   - Durable writes: Accept/AcceptSync and Complete. When they report success, the write
//     survives a crash of the process and, if the store is configured to sync (the default,
//     JournalConfig FSYNC), power loss and an OS crash: the Journal waits for an fsync that
//     concurrent writes share (group commit).
//   - Bookkeeping writes: UpdateCall (attempt numbers, retry state), SetDelivery (delivery state,
//     dead letters, redrive), Delete (finished casts) and Purge. When they return, the write is
//     visible to every read and survives a crash of the process, but does NOT wait for an fsync:
//     power loss may lose it, until the next durable write makes it durable too (a store applies
//     writes in order, so a durable write also makes every earlier write durable). Losing one only
//     repeats work that is at least once anyway: an attempt number, a callback delivery, the
//     deletion of a cast, a purge. A lost bookkeeping write is lost whole (every write is
//     all-or-nothing), never half applied.
// Reads see a write once its result is reported.
//
// Failure. If the store cannot write, the write reports UNAVAILABLE "journal write failed: ..."
// and the store stays failed for the rest of its life: every later write fails fast with the same
// status and healthy() is false (durability honesty: a store that could not write acknowledges
// nothing more; restart to recover). Reads keep working from what is stored.
//
// Corruption. Records that do not parse give DATA_LOSS naming the record; nothing crashes on bad
// bytes.
//
// Thread-safety: every method may be called from any thread concurrently, except that the
// blocking writes (AcceptSync, UpdateCall, Complete, SetDelivery, Delete, Purge) must not be
// called from an Accept `done` callback: they return FAILED_PRECONDITION there instead of
// deadlocking. The destructor must not run concurrently with other calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"

namespace callmesh::sidecar {

// A page of ListCalls or ListDeadLetters ends once it holds this many bytes (it always holds at
// least one item), so that a page of calls with large results still fits in one gRPC message.
inline constexpr size_t kMaxListPageBytes = 1 << 20;

class CallStore {
 public:
  // Finishes every write submitted so far (reporting results as usual) and closes the store.
  // Writes submitted while it runs fail with UNAVAILABLE.
  virtual ~CallStore() = default;

  struct AcceptResult {
    // The CID of the stored call: the envelope's, or on deduplication the CID that first used
    // the idempotency key.
    std::string cid;
    bool deduplicated = false;
  };

  // Records a new call in state ACCEPTED: the envelope (with payload) as given, Call.accepted_at
  // = envelope.accepted_at (filled from the store's clock if unset), Call.callback =
  // envelope.callback, attempts 0 (or RUNNING, with a FirstAttempt below). If
  // envelope.idempotency_key is non-empty and already used by a stored call (also one accepted
  // concurrently, not yet reported), nothing is written and the first CID is returned with
  // deduplicated = true. Idempotency keys are global to the store (one sidecar); they are released
  // when their call is purged, or — for a deleted call — by the purge once the retention window
  // since the delete has run out (see Delete). Durable write: `done` runs exactly once, after the
  // call is durable (see Durability above) or refused, on a thread of the store; it must be quick
  // and must not call the blocking writes. If the store is already closed, `done` runs at once on
  // the calling thread. Results:
  //   OK                AcceptResult.
  //   INVALID_ARGUMENT  envelope.cid is empty.
  //   ALREADY_EXISTS    a call with this CID is already stored (and no idempotency key matched).
  //   UNAVAILABLE       "journal write failed: ..." (now or earlier), or the store is closed.
  void Accept(v1::CallEnvelope envelope, std::function<void(absl::StatusOr<AcceptResult>)> done) {
    Accept(std::move(envelope), std::nullopt, std::move(done));
  }
  // The first attempt of a call that its caller starts as soon as the call is durable: Accept
  // then records the call in state RUNNING with attempts = 1 and started_at
  // (calls::BeginAttempt, what UpdateCall would write before that attempt) in the same durable
  // write, so the attempt needs no write of its own. The attempt's number is then on disk before
  // the target can see it, as with UpdateCall. Not written on deduplication (the first call's
  // record is left as it is).
  struct FirstAttempt {
    absl::Time started_at;
  };
  // Accept, with the first attempt recorded as started (see FirstAttempt) when given.
  virtual void Accept(v1::CallEnvelope envelope, std::optional<FirstAttempt> first_attempt,
                      std::function<void(absl::StatusOr<AcceptResult>)> done) = 0;
  // Accept, waiting for the result (durable when it returns OK). Same results, and
  // FAILED_PRECONDITION when called from a `done` callback.
  virtual absl::StatusOr<AcceptResult> AcceptSync(v1::CallEnvelope envelope) = 0;

  // Rewrites the mutable fields of a non-terminal call, identified by call.envelope().cid():
  // state (ACCEPTED or RUNNING), attempts, started_at, last_status_code, last_status_message,
  // next_attempt_at and callback (the resolved callback service). The stored envelope (with its
  // payload), accepted_at, completion and callback_delivery are kept: the envelope is immutable
  // once stored, so `call` may come from a payload-less copy. Bookkeeping write: blocks until
  // written, not synced (see Durability). Errors:
  //   INVALID_ARGUMENT    empty CID, or call.state() is not ACCEPTED or RUNNING (terminal states
  //                       go through Complete).
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION the call is already terminal (its record is left unchanged), or called
  //                       from a `done` callback.
  //   DATA_LOSS           the stored record does not parse.
  //   UNAVAILABLE         as for Accept.
  virtual absl::Status UpdateCall(const v1::Call& call) = 0;

  // Makes a call terminal, once. `completion` carries the outcome: state (SUCCEEDED, FAILED,
  // CANCELLED or EXPIRED), reply, status_code, status_message, and optionally attempts,
  // started_at and completed_at (unset: the call's attempts and started_at, the clock's now).
  // The store fills the rest from the stored call (cid, service, method, source, accepted_at,
  // idempotency_key, parent_cid, headers) and assigns the next sequence of the completion log
  // (> every sequence handed out before, also across restarts and purges). The call record takes
  // state, attempts, started_at, completed_at, the completion and callback_delivery = `delivery`;
  // next_attempt_at is cleared. Durable write: blocks until durable; returns the stored
  // Completion. Errors:
  //   INVALID_ARGUMENT    empty CID, completion.state is not terminal, completion.cid names
  //                       another call, or `delivery` is not NONE or PENDING.
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION "call <cid> is already <STATE> (sequence N)": one outcome per CID, the
  //                       stored one stays untouched (GetCall returns it); or called from a
  //                       `done` callback.
  //   DATA_LOSS, UNAVAILABLE as for UpdateCall.
  virtual absl::StatusOr<v1::Completion> Complete(const std::string& cid, v1::Completion completion,
                                                  v1::DeliveryState delivery) = 0;

  // UpdateCall, Complete, Delete and SetDelivery without waiting, for callers that continue a
  // call when its write is done instead of parking a thread on it (the dispatcher, the callback
  // deliverer). The write is the same, and
  // so are its results and its durability (Complete's is reported once durable); `done` runs
  // exactly once, on a thread of the store after the write, in the order of the writes, like
  // Accept's (quick; no blocking writes from it). A request refused before it is queued
  // (INVALID_ARGUMENT) or a closed store reports at once, on the calling thread. These may be
  // called from a `done` callback.
  virtual void UpdateCall(v1::Call call, std::function<void(absl::Status)> done) = 0;
  virtual void Complete(std::string cid, v1::Completion completion, v1::DeliveryState delivery,
                        std::function<void(absl::StatusOr<v1::Completion>)> done) = 0;
  virtual void Delete(std::string cid, std::function<void(absl::Status)> done) = 0;
  virtual void SetDelivery(std::string cid, v1::DeliveryState state,
                           std::optional<v1::DeadLetter> dead_letter,
                           std::function<void(absl::Status)> done) = 0;

  // Moves the callback delivery of a terminal call, atomically with its dead letter:
  //   PENDING        from PENDING or DEAD_LETTERED (a redrive: the dead letter is deleted).
  //   DELIVERED      from PENDING or DEAD_LETTERED (the dead letter is deleted); final. Starts the
  //                  retention period of the result (see Purge).
  //   DEAD_LETTERED  from PENDING or DEAD_LETTERED, with `dead_letter` required: it is stored
  //                  under the call's CID; its completion and callback are filled from the call
  //                  and dead_lettered_at from the store's clock if unset.
  // Setting the current state again is allowed (DEAD_LETTERED replaces the dead letter).
  // Bookkeeping write: blocks until written, not synced (see Durability). Errors:
  //   INVALID_ARGUMENT    empty CID, another target state, `dead_letter` missing for
  //                       DEAD_LETTERED or given for another state, or its completion names
  //                       another CID.
  //   NOT_FOUND           "no call with CID <cid>".
  //   FAILED_PRECONDITION the call is not terminal, or its delivery is NONE (no callback) or
  //                       DELIVERED (final) and the target state differs; or called from a
  //                       `done` callback.
  //   DATA_LOSS, UNAVAILABLE as for UpdateCall.
  virtual absl::Status SetDelivery(const std::string& cid, v1::DeliveryState state,
                                   const v1::DeadLetter* dead_letter) = 0;

  // Deletes a call outright, in any state, with its completion log entry, dead letter and
  // recovery entry. For casts, whose outcome is not kept. Its idempotency key (if it still maps to
  // this call) is kept for the retention window — Purge drops it with the results of that age —
  // so that a retried Cast with the same key is deduplicated to this CID instead of running
  // again. Bookkeeping write: blocks until written, not synced. Errors: INVALID_ARGUMENT for an
  // empty CID; NOT_FOUND, DATA_LOSS, UNAVAILABLE, and FAILED_PRECONDITION from a `done`
  // callback, as for UpdateCall.
  virtual absl::Status Delete(const std::string& cid) = 0;

  // The stored call, payload included. Errors: NOT_FOUND "no call with CID <cid>"; DATA_LOSS
  // naming the record if it does not parse; UNAVAILABLE if the store cannot read.
  virtual absl::StatusOr<v1::Call> GetCall(const std::string& cid) const = 0;

  struct ListFilter {
    // Any of these states; empty = all.
    std::vector<v1::CallState> states;
    // Exact envelope.service / envelope.source; empty = any.
    std::string service;
    std::string source;
  };
  // Calls matching `filter`, newest first (reverse CID order, CIDs being time-ordered), starting
  // after `page_token` ("" = from the newest). At most `page_size` calls (0 = 100, capped at
  // 1000), and a page ends once it holds kMaxListPageBytes (it always holds at least one call);
  // envelope.payload is cleared (completion.reply is kept). The second member is the next page
  // token: "" when the store holds no further call, else an opaque string to pass back (the last
  // page may be empty). Errors: INVALID_ARGUMENT for a page token that is not one this list
  // returned; DATA_LOSS for a record that does not parse; UNAVAILABLE if the store cannot read.
  virtual absl::StatusOr<std::pair<std::vector<v1::Call>, std::string>> ListCalls(
      const ListFilter& filter, uint32_t page_size, const std::string& page_token) const = 0;

  // The completions with sequence > `after`, in sequence order, at most `limit` (0 = none).
  // Purged or deleted completions are gone: a watcher that resumes after a purge sees only what
  // is left. Errors: DATA_LOSS, UNAVAILABLE as for ListCalls.
  virtual absl::StatusOr<std::vector<v1::Completion>> CompletionsAfter(uint64_t after,
                                                                       size_t limit) const = 0;

  // The highest sequence assigned so far (0 if none); monotonic across restarts and purges.
  virtual uint64_t last_sequence() const = 0;

  // Dead letters in CID order, paginated as ListCalls (page_size 0 = 100, capped at 1000, bytes
  // bounded by kMaxListPageBytes). Redrive is SetDelivery(cid, PENDING, nullptr). Errors:
  // INVALID_ARGUMENT, DATA_LOSS, UNAVAILABLE as for ListCalls.
  virtual absl::StatusOr<std::pair<std::vector<v1::DeadLetter>, std::string>> ListDeadLetters(
      uint32_t page_size, const std::string& page_token) const = 0;

  // For recovery at start: calls `fn` (on this thread, in CID order, from one consistent
  // snapshot) with every non-terminal call and every terminal call whose callback delivery is
  // PENDING, payloads included. `fn` may call the store. Stops at the first error: DATA_LOSS
  // naming the record that does not parse or is missing; UNAVAILABLE if the store cannot read.
  virtual absl::Status ForEachUnfinished(const std::function<void(const v1::Call&)>& fn) const = 0;

  // Deletes every terminal call whose result is no longer owed to anyone and whose retention has
  // run out: delivery NONE with completed_at <= now - retention, or delivery DELIVERED with the
  // delivery time (store clock at SetDelivery) <= now - retention. Their completion log,
  // idempotency keys and dead letters go with them. Calls with delivery PENDING or DEAD_LETTERED
  // and non-terminal calls are kept however old. Work is proportional to what is purged. Returns
  // how many calls were deleted. Bookkeeping write: blocks until written, not synced (a purge
  // lost to power loss is repeated by the next one). Errors: INVALID_ARGUMENT for a negative
  // retention; DATA_LOSS, UNAVAILABLE, FAILED_PRECONDITION from a `done` callback, as for
  // UpdateCall.
  virtual absl::StatusOr<size_t> Purge(absl::Time now, absl::Duration retention) = 0;

  // Calls accepted and not yet terminal (for backpressure: LimitsConfig.max_pending_calls).
  // Survives restarts.
  virtual size_t pending_count() const = 0;

  // Dead letters currently listed by ListDeadLetters. Survives restarts.
  virtual size_t dead_letter_count() const = 0;

  // False once a write has failed (see Failure above); stays false until the process restarts.
  virtual bool healthy() const = 0;

  // Counters since the store was opened, to see group commit at work: `writes` mutations
  // processed, `batches` groups of them written at once, `syncs` of those written with an fsync.
  // A group that ends up empty (every mutation deduplicated or refused) is not written.
  // `deliveries`: callback deliveries recorded (SetDelivery to DELIVERED) since opened.
  struct Stats {
    uint64_t writes = 0;
    uint64_t batches = 0;
    uint64_t syncs = 0;
    uint64_t largest_batch = 0;  // most mutations in one batch
    uint64_t deliveries = 0;
  };
  virtual Stats stats() const = 0;
};

}  // namespace callmesh::sidecar

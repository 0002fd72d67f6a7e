// The key layout of the call journal's RocksDB (one default column family, bytewise order).
//
//   c/<cid>                      -> callmesh.v1.Call, serialized: the call's state (envelope,
//                                   state, attempts, timestamps, completion, callback delivery)
//                                   WITHOUT envelope.payload and completion.reply, which have
//                                   keys of their own below (format "2"; a format "1" record
//                                   still holds them inline until its next rewrite moves them)
//   b/<cid>                      -> the request payload (raw bytes), written once at acceptance
//                                   when it is not empty
//   o/<cid>                      -> the reply (raw bytes), written once at completion when it is
//                                   not empty
//   i/<source>\x1f<key>          -> <cid> that first used the idempotency key <key> (raw bytes)
//                                   among the calls of <source>: keys are scoped by source, so
//                                   one app cannot attach to (or learn the CID of) another's
//                                   call by reusing its key. Written by format "1" journals
//                                   before the scoping as i/<key>: still honoured for a call of
//                                   the same source (see Journal::Accept), never written.
//   s/<sequence>                 -> <cid>; the completion log, one key per terminal call
//   d/<cid>                      -> callmesh.v1.DeadLetter, serialized
//   p/<cid>                      -> "A" (call not yet terminal) or "D" (terminal, callback
//                                   delivery PENDING): the recovery set, see ForEachUnfinished
//   r/<micros>/<cid>             -> "" : the call may be purged once <micros> + retention passed
//   m/format                     -> "2" (layout version, written when the journal is created;
//                                   a format "1" journal is upgraded in place at open)
//   m/last_sequence              -> highest sequence ever assigned, in decimal
//
// Publish/subscribe (runtime/sidecar/pubsub/topic_log.h; written through Journal::SubmitShared):
//   e/<topic>/<sequence>         -> callmesh.v1.Event, serialized; the topic log
//   n/<topic>                    -> highest event sequence ever assigned in the topic, in decimal
//   u/<topic>/<service>          -> callmesh.v1.SubscriptionInfo, serialized (position, mode)
//   k/<source length>/<source><key> -> callmesh.v1.Event without payload (topic, sequence,
//                                   event_id): the first publish with this key by this source
//   x/<topic>/<service>/<sequence> -> callmesh.v1.EventDeadLetter, serialized
//
// <cid> is the UUIDv7 text form, so `c/`, `d/` and `p/` iterate in acceptance order.
// <sequence> and <micros> are unsigned decimals zero-padded to 20 digits, so bytewise order is
// numeric order and the keys stay readable in `ldb scan`. <micros> is microseconds since the
// Unix epoch (times before 1970 are written as 0).
//
// Why the payload and the reply have keys of their own: every mutation of a call (its attempts,
// its completion, its callback delivery) reads and rewrites the c/ record. With the two byte
// fields inline, a 1 KiB call wrote its request payload four times and its reply twice, and read
// them back before each rewrite; split off, each is written once and read only by those who
// need it (recovery, GetCall, the completion log), never by the writer's read-modify-writes.
// A reader joins them back (journal_records.h, ReadCall); a call's keys are written and deleted
// in one WriteBatch, so the parts never disagree.
//
// m/last_sequence is needed besides the s/ keys because Purge deletes s/ keys: a sequence must
// never be handed out twice, or a watcher resuming with `after_sequence` would skip a completion.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh::sidecar::journal_keys {

// Every prefix below is this long (a letter and "/"); the journal's memtable insert hints rely on
// it (journal_keys.cc asserts it of each).
inline constexpr size_t kPrefixBytes = 2;
inline constexpr absl::string_view kCallPrefix = "c/";
inline constexpr absl::string_view kPayloadPrefix = "b/";
inline constexpr absl::string_view kReplyPrefix = "o/";
inline constexpr absl::string_view kIdempotencyPrefix = "i/";
inline constexpr absl::string_view kSequencePrefix = "s/";
inline constexpr absl::string_view kDeadLetterPrefix = "d/";
inline constexpr absl::string_view kUnfinishedPrefix = "p/";
inline constexpr absl::string_view kRetentionPrefix = "r/";
inline constexpr absl::string_view kEventPrefix = "e/";
inline constexpr absl::string_view kTopicSequencePrefix = "n/";
inline constexpr absl::string_view kSubscriptionPrefix = "u/";
inline constexpr absl::string_view kPublishKeyPrefix = "k/";
inline constexpr absl::string_view kEventDeadLetterPrefix = "x/";
inline constexpr absl::string_view kFormatKey = "m/format";
inline constexpr absl::string_view kLastSequenceKey = "m/last_sequence";

// Value of kFormatKey written by this code; a journal with another value is refused, except
// kPreviousFormatVersion, which Journal::Open upgrades (its records are read as they are).
inline constexpr absl::string_view kFormatVersion = "2";
// Format "1": payload and reply inline in c/<cid>.
inline constexpr absl::string_view kPreviousFormatVersion = "1";

// Values under p/<cid>.
inline constexpr absl::string_view kUnfinishedActive = "A";
inline constexpr absl::string_view kUnfinishedDeliveryPending = "D";

std::string CallKey(absl::string_view cid);
std::string PayloadKey(absl::string_view cid);
std::string ReplyKey(absl::string_view cid);
// i/<idempotency_key>: the unscoped form of journals written before keys were scoped.
std::string IdempotencyKey(absl::string_view idempotency_key);
// i/<source>\x1f<idempotency_key>. Source names cannot hold \x1f (runtime/common/names.h), so
// two (source, key) pairs never share a key.
std::string ScopedIdempotencyKey(absl::string_view source, absl::string_view idempotency_key);
std::string SequenceKey(uint64_t sequence);
std::string DeadLetterKey(absl::string_view cid);
std::string UnfinishedKey(absl::string_view cid);
std::string RetentionKey(absl::Time start, absl::string_view cid);

// The smallest key greater than every key that starts with `prefix` (the iteration upper bound
// of a prefix): "c/" -> "c0".
std::string PrefixEnd(absl::string_view prefix);

// Decimal zero-padded to 20 digits: 7 -> "00000000000000000007".
std::string EncodeUint64(uint64_t value);
// Parses exactly what EncodeUint64 writes (1 to 20 decimal digits, no sign, no overflow).
bool DecodeUint64(absl::string_view text, uint64_t* value);

// Parses "s/<sequence>". False for anything else.
bool ParseSequenceKey(absl::string_view key, uint64_t* sequence);
// Parses "r/<micros>/<cid>". False for anything else.
bool ParseRetentionKey(absl::string_view key, uint64_t* micros, std::string* cid);

// A key for error messages: printable ASCII as is, other bytes as C escapes, at most ~200
// characters (idempotency keys are caller-chosen bytes).
std::string Printable(absl::string_view key);

}  // namespace callmesh::sidecar::journal_keys

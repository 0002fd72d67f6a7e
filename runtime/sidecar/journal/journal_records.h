// Reading the journal's records: decoding with checks, errors that name the key and the folder,
// iteration over one key prefix at a snapshot. Internal to runtime/sidecar/journal; the contract
// for everyone else is journal.h.
//
// Error conventions, shared by every reader of the journal:
//   NOT_FOUND    "no call with CID <cid>"
//   DATA_LOSS    "journal record <key> in <dir>: <problem>" for a record that does not parse, or
//                parses but belongs to another key (random bytes can be valid wire format);
//                "journal read of <key> in <dir> failed: Corruption: ..." when RocksDB finds a
//                bad checksum.
//   UNAVAILABLE  "journal read of <key> in <dir> failed: ..." for any other RocksDB read error.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "rocksdb/db.h"

namespace callmesh::sidecar::journal_records {

// Debian's Abseil has its own string_view, which RocksDB's Slice does not take.
inline rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

absl::Status NoSuchCall(absl::string_view cid);
absl::Status ReadError(const std::string& dir, absl::string_view key, const rocksdb::Status& s);
absl::Status BadRecord(const std::string& dir, absl::string_view key, absl::string_view problem);

// Decodes the value of c/<cid> or d/<cid>.
absl::StatusOr<v1::Call> ParseCall(const std::string& dir, absl::string_view cid,
                                   const std::string& bytes);
absl::StatusOr<v1::DeadLetter> ParseDeadLetter(const std::string& dir, absl::string_view cid,
                                               const std::string& bytes);

// Which of a call's byte fields a read joins back into the record from their own keys
// (journal_keys.h: b/<cid>, o/<cid>). A record of format "1" holds them inline either way.
struct CallParts {
  bool payload = true;  // envelope.payload
  bool reply = true;    // completion.reply
};
inline constexpr CallParts kWholeCall{true, true};
inline constexpr CallParts kCallStateOnly{false, false};
inline constexpr CallParts kCallWithReply{false, true};

// Reads one key of the journal: its value, nullopt if absent, or the read's error.
using KeyReader = std::function<absl::StatusOr<std::optional<std::string>>(const std::string& key)>;
// A KeyReader of `db` at read_options (errors as ReadError).
KeyReader DbReader(rocksdb::DB* db, const rocksdb::ReadOptions& read_options,
                   const std::string& dir);

// Joins the `parts` asked for into `call`, a record decoded from c/<cid>, reading them with
// `read`: at the snapshot the record was read at, or from the batch being written. Absent keys
// leave the record as it is: an empty field, or one held inline (format "1"). The one place that
// puts a call's parts back together.
absl::Status JoinParts(const KeyReader& read, CallParts parts, v1::Call& call);

// Reads and decodes c/<cid> and joins the `parts` asked for, all at one snapshot
// (read_options.snapshot if set, else one taken here).
absl::StatusOr<v1::Call> ReadCall(rocksdb::DB* db, const rocksdb::ReadOptions& read_options,
                                  const std::string& dir, absl::string_view cid,
                                  CallParts parts = kWholeCall);

// An iterator over the keys that start with `prefix`, at `snapshot` (nullptr = the latest). Owns
// the bounds that RocksDB only points to, so it cannot be copied or moved.
class PrefixIterator {
 public:
  PrefixIterator(rocksdb::DB* db, absl::string_view prefix, const rocksdb::Snapshot* snapshot);
  PrefixIterator(const PrefixIterator&) = delete;
  PrefixIterator& operator=(const PrefixIterator&) = delete;

  rocksdb::Iterator* operator->() { return it_.get(); }
  // The current key without its prefix.
  absl::string_view suffix() const;

 private:
  const std::string lower_, upper_;
  rocksdb::Slice lower_slice_, upper_slice_;
  std::unique_ptr<rocksdb::Iterator> it_;
};

// A snapshot of `db`, released at scope exit.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;

  const rocksdb::Snapshot* get() const { return snapshot_; }
  rocksdb::ReadOptions read_options() const {
    rocksdb::ReadOptions options;
    options.snapshot = snapshot_;
    return options;
  }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

// Calls `fn` with every call indexed under p/ (the recovery set), in CID order, from one
// snapshot, with the `parts` asked for. DATA_LOSS naming the key for a record that does not
// parse or a p/ key with no record.
absl::Status ScanUnfinished(rocksdb::DB* db, const std::string& dir,
                            const std::function<void(const v1::Call&)>& fn,
                            CallParts parts = kWholeCall);

}  // namespace callmesh::sidecar::journal_records

#include "runtime/sidecar/journal/journal_records.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "runtime/common/status_macros.h"
#include "runtime/sidecar/journal/journal_keys.h"

namespace callmesh::sidecar::journal_records {
namespace keys = journal_keys;

absl::Status NoSuchCall(absl::string_view cid) {
  return absl::NotFoundError(absl::StrCat("no call with CID ", keys::Printable(cid)));
}

// A RocksDB read error on `key`: corruption is DATA_LOSS, anything else UNAVAILABLE.
absl::Status ReadError(const std::string& dir, absl::string_view key, const rocksdb::Status& s) {
  const std::string message = absl::StrCat("journal read of ", keys::Printable(key), " in ", dir,
                                           " failed: ", s.ToString());
  return s.IsCorruption() ? absl::DataLossError(message) : absl::UnavailableError(message);
}

absl::Status BadRecord(const std::string& dir, absl::string_view key, absl::string_view problem) {
  return absl::DataLossError(
      absl::StrCat("journal record ", keys::Printable(key), " in ", dir, ": ", problem));
}

// Parses the value of c/<cid>. A record that parses but names another CID counts as garbage
// too (random bytes can happen to be valid protobuf wire format).
absl::StatusOr<v1::Call> ParseCall(const std::string& dir, absl::string_view cid,
                                   const std::string& bytes) {
  v1::Call call;
  const std::string key = keys::CallKey(cid);
  if (!call.ParseFromString(bytes)) {
    return BadRecord(dir, key,
                     absl::StrCat("does not parse as callmesh.v1.Call (", bytes.size(), " bytes)"));
  }
  if (call.envelope().cid() != cid) {
    return BadRecord(
        dir, key,
        absl::StrCat("holds a call with CID \"", keys::Printable(call.envelope().cid()), "\" (",
                     bytes.size(), " bytes)"));
  }
  return call;
}

absl::StatusOr<v1::DeadLetter> ParseDeadLetter(const std::string& dir, absl::string_view cid,
                                               const std::string& bytes) {
  v1::DeadLetter dead_letter;
  const std::string key = keys::DeadLetterKey(cid);
  if (!dead_letter.ParseFromString(bytes)) {
    return BadRecord(
        dir, key,
        absl::StrCat("does not parse as callmesh.v1.DeadLetter (", bytes.size(), " bytes)"));
  }
  if (dead_letter.completion().cid() != cid) {
    return BadRecord(dir, key,
                     absl::StrCat("holds a dead letter of CID \"",
                                  keys::Printable(dead_letter.completion().cid()), "\""));
  }
  return dead_letter;
}

KeyReader DbReader(rocksdb::DB* db, const rocksdb::ReadOptions& read_options,
                   const std::string& dir) {
  return [db, read_options,
          dir](const std::string& key) -> absl::StatusOr<std::optional<std::string>> {
    std::string value;
    const rocksdb::Status s = db->Get(read_options, key, &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return ReadError(dir, key, s);
    return value;
  };
}

namespace {

// Sets `field` to the value at `key` if there is one.
absl::Status JoinPart(const KeyReader& read, const std::string& key, std::string& field) {
  CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> value, read(key));
  if (value.has_value()) field = *std::move(value);
  return absl::OkStatus();
}

}  // namespace

absl::Status JoinParts(const KeyReader& read, CallParts parts, v1::Call& call) {
  const std::string& cid = call.envelope().cid();
  if (parts.payload) {
    CALLMESH_RETURN_IF_ERROR(
        JoinPart(read, keys::PayloadKey(cid), *call.mutable_envelope()->mutable_payload()));
  }
  if (parts.reply && call.has_completion()) {
    CALLMESH_RETURN_IF_ERROR(
        JoinPart(read, keys::ReplyKey(cid), *call.mutable_completion()->mutable_reply()));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Call> ReadCall(rocksdb::DB* db, const rocksdb::ReadOptions& read_options,
                                  const std::string& dir, absl::string_view cid, CallParts parts) {
  std::optional<ScopedSnapshot> own_snapshot;
  rocksdb::ReadOptions at = read_options;
  if (at.snapshot == nullptr && (parts.payload || parts.reply)) {
    own_snapshot.emplace(db);
    at.snapshot = own_snapshot->get();
  }
  const KeyReader read = DbReader(db, at, dir);
  CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> bytes, read(keys::CallKey(cid)));
  if (!bytes.has_value()) return NoSuchCall(cid);
  CALLMESH_ASSIGN_OR_RETURN(v1::Call call, ParseCall(dir, cid, *bytes));
  CALLMESH_RETURN_IF_ERROR(JoinParts(read, parts, call));
  return call;
}

PrefixIterator::PrefixIterator(rocksdb::DB* db, absl::string_view prefix,
                               const rocksdb::Snapshot* snapshot)
    : lower_(prefix), upper_(keys::PrefixEnd(prefix)), lower_slice_(lower_), upper_slice_(upper_) {
  rocksdb::ReadOptions read_options;
  read_options.snapshot = snapshot;
  read_options.iterate_lower_bound = &lower_slice_;
  read_options.iterate_upper_bound = &upper_slice_;
  it_.reset(db->NewIterator(read_options));
}

absl::string_view PrefixIterator::suffix() const {
  const rocksdb::Slice key = it_->key();
  return absl::string_view(key.data(), key.size()).substr(lower_.size());
}

// Calls `fn` with every call indexed under p/, in CID order, from one snapshot.
absl::Status ScanUnfinished(rocksdb::DB* db, const std::string& dir,
                            const std::function<void(const v1::Call&)>& fn, CallParts parts) {
  ScopedSnapshot snapshot(db);
  PrefixIterator it(db, keys::kUnfinishedPrefix, snapshot.get());
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string cid(it.suffix());
    absl::StatusOr<v1::Call> call = ReadCall(db, snapshot.read_options(), dir, cid, parts);
    if (absl::IsNotFound(call.status())) {
      return BadRecord(dir, keys::UnfinishedKey(cid),
                       "index key of an unfinished call with no call record");
    }
    if (!call.ok()) return call.status();
    fn(*call);
  }
  if (!it->status().ok()) return ReadError(dir, keys::kUnfinishedPrefix, it->status());
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar::journal_records

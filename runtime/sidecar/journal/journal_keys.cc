#include "runtime/sidecar/journal/journal_keys.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace callmesh::sidecar::journal_keys {

// The memtable's insert hints take the first kPrefixBytes of a key as its prefix.
static_assert(kCallPrefix.size() == kPrefixBytes && kPayloadPrefix.size() == kPrefixBytes &&
              kReplyPrefix.size() == kPrefixBytes && kIdempotencyPrefix.size() == kPrefixBytes &&
              kSequencePrefix.size() == kPrefixBytes && kDeadLetterPrefix.size() == kPrefixBytes &&
              kUnfinishedPrefix.size() == kPrefixBytes && kRetentionPrefix.size() == kPrefixBytes &&
              kEventPrefix.size() == kPrefixBytes && kTopicSequencePrefix.size() == kPrefixBytes &&
              kSubscriptionPrefix.size() == kPrefixBytes &&
              kPublishKeyPrefix.size() == kPrefixBytes &&
              kEventDeadLetterPrefix.size() == kPrefixBytes);

namespace {

constexpr size_t kUint64Digits = 20;
constexpr size_t kMaxPrintable = 200;

}  // namespace

std::string CallKey(absl::string_view cid) { return absl::StrCat(kCallPrefix, cid); }
std::string PayloadKey(absl::string_view cid) { return absl::StrCat(kPayloadPrefix, cid); }
std::string ReplyKey(absl::string_view cid) { return absl::StrCat(kReplyPrefix, cid); }

std::string IdempotencyKey(absl::string_view idempotency_key) {
  return absl::StrCat(kIdempotencyPrefix, idempotency_key);
}

std::string ScopedIdempotencyKey(absl::string_view source, absl::string_view idempotency_key) {
  return absl::StrCat(kIdempotencyPrefix, source, "\x1f", idempotency_key);
}

std::string SequenceKey(uint64_t sequence) {
  return absl::StrCat(kSequencePrefix, EncodeUint64(sequence));
}

std::string DeadLetterKey(absl::string_view cid) { return absl::StrCat(kDeadLetterPrefix, cid); }

std::string UnfinishedKey(absl::string_view cid) { return absl::StrCat(kUnfinishedPrefix, cid); }

std::string RetentionKey(absl::Time start, absl::string_view cid) {
  const int64_t micros = std::max<int64_t>(0, absl::ToUnixMicros(start));
  return absl::StrCat(kRetentionPrefix, EncodeUint64(static_cast<uint64_t>(micros)), "/", cid);
}

std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  // Every prefix here ends in '/', so incrementing the last byte never overflows.
  end.back() = static_cast<char>(end.back() + 1);
  return end;
}

std::string EncodeUint64(uint64_t value) {
  std::string digits = absl::StrCat(value);
  return std::string(kUint64Digits - digits.size(), '0') + digits;
}

bool DecodeUint64(absl::string_view text, uint64_t* value) {
  if (text.empty() || text.size() > kUint64Digits) return false;
  uint64_t result = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (result > (UINT64_MAX - digit) / 10) return false;
    result = result * 10 + digit;
  }
  *value = result;
  return true;
}

bool ParseSequenceKey(absl::string_view key, uint64_t* sequence) {
  if (!absl::ConsumePrefix(&key, kSequencePrefix)) return false;
  return key.size() == kUint64Digits && DecodeUint64(key, sequence);
}

bool ParseRetentionKey(absl::string_view key, uint64_t* micros, std::string* cid) {
  if (!absl::ConsumePrefix(&key, kRetentionPrefix)) return false;
  if (key.size() < kUint64Digits + 2 || key[kUint64Digits] != '/') return false;
  if (!DecodeUint64(key.substr(0, kUint64Digits), micros)) return false;
  *cid = std::string(key.substr(kUint64Digits + 1));
  return true;
}

std::string Printable(absl::string_view key) {
  std::string out = absl::CHexEscape(key.substr(0, kMaxPrintable));
  if (key.size() > kMaxPrintable) absl::StrAppend(&out, "...");
  return out;
}

}  // namespace callmesh::sidecar::journal_keys

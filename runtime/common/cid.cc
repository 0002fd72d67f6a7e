#include "runtime/common/cid.h"

#include <chrono>

#include "absl/strings/ascii.h"

namespace callmesh {
namespace {

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr char kHex[] = "0123456789abcdef";

void AppendHex(uint64_t value, int digits, std::string* out) {
  for (int i = digits - 1; i >= 0; --i) out->push_back(kHex[(value >> (4 * i)) & 0xf]);
}

}  // namespace

CidGenerator::CidGenerator() : CidGenerator(SystemNowMs, std::random_device{}()) {}

CidGenerator::CidGenerator(Clock clock, uint64_t seed) : clock_(std::move(clock)), random_(seed) {}

std::string CidGenerator::Next() {
  int64_t ms;
  uint32_t counter;
  uint64_t tail;
  {
    absl::MutexLock lock(&mu_);
    ms = clock_();
    if (ms > last_ms_) {
      last_ms_ = ms;
      // Seed the counter in the lower half of its range, leaving room to count up.
      counter_ = static_cast<uint32_t>(random_() & 0x7ff);
    } else {
      // Same millisecond, or the clock went back: keep the last timestamp and count up; when
      // the 12-bit counter overflows, borrow the next millisecond.
      ms = last_ms_;
      if (++counter_ > 0xfff) {
        last_ms_ = ++ms;
        counter_ = 0;
      }
    }
    counter = counter_;
    tail = random_();
  }
  std::string out;
  out.reserve(36);
  AppendHex(static_cast<uint64_t>(ms) >> 16, 8, &out);  // unix_ts_ms, high 32 bits
  out.push_back('-');
  AppendHex(static_cast<uint64_t>(ms) & 0xffff, 4, &out);  // unix_ts_ms, low 16 bits
  out.push_back('-');
  AppendHex(0x7000 | counter, 4, &out);  // version 7, rand_a = counter
  out.push_back('-');
  AppendHex(0x8000 | ((tail >> 48) & 0x3fff), 4, &out);  // variant 10, rand_b high
  out.push_back('-');
  AppendHex(tail & 0xffffffffffffULL, 12, &out);  // rand_b low
  return out;
}

bool IsWellFormedCid(absl::string_view cid) {
  if (cid.size() != 36) return false;
  for (size_t i = 0; i < cid.size(); ++i) {
    const char c = cid[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return cid[14] == '7';
}

int64_t CidTimestampMs(absl::string_view cid) {
  int64_t ms = 0;
  for (size_t i = 0; i < 13; ++i) {
    if (i == 8) continue;
    const char c = cid[i];
    ms = (ms << 4) | (c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return ms;
}

}  // namespace callmesh

// Correlation IDs: UUIDv7 strings (RFC 9562), time-ordered so that sorting CIDs as strings sorts
// calls by acceptance time, unique without coordination.
//
//   CidGenerator cids;                      // system clock, random seed
//   std::string cid = cids.Next();          // "0190f1d2-7a3b-7c4d-8e5f-0123456789ab"
//
// Thread-safe. Within one generator, every CID is strictly greater (as a string) than the one
// before, even when many are made in the same millisecond or the clock steps back: the 12-bit
// `rand_a` field holds a counter seeded at random each millisecond (RFC 9562 method 1), and the
// timestamp never goes backwards.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace callmesh {

class CidGenerator {
 public:
  // Milliseconds since the Unix epoch.
  using Clock = std::function<int64_t()>;

  // Uses the system clock and a random seed.
  CidGenerator();
  // For tests: an injected clock and seed.
  CidGenerator(Clock clock, uint64_t seed);

  // The next CID.
  std::string Next();

 private:
  Clock clock_;
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  int64_t last_ms_ ABSL_GUARDED_BY(mu_) = 0;
  uint32_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

// True if `cid` has the canonical UUID text form (36 characters, lower-case hex, dashes at
// 8-13-18-23) with version 7. Used to reject malformed CIDs with INVALID_ARGUMENT.
bool IsWellFormedCid(absl::string_view cid);

// The acceptance time embedded in a well-formed CID, in Unix milliseconds.
int64_t CidTimestampMs(absl::string_view cid);

}  // namespace callmesh

#include "tests/support/wait_until.h"

#include "absl/time/clock.h"

namespace callmesh::testing {

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout,
               absl::Duration every) {
  const absl::Time until = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > until) return condition();
    absl::SleepFor(every);
  }
  return true;
}

}  // namespace callmesh::testing

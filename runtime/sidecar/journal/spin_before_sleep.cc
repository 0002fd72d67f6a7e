#include "runtime/sidecar/journal/spin_before_sleep.h"

#include <algorithm>

namespace callmesh::sidecar {

SpinBeforeSleep::SpinBeforeSleep(absl::Duration window)
    : window_(std::max(window, absl::ZeroDuration())) {}

absl::Duration SpinBeforeSleep::NextSpin() const {
  return last_wait_within_window_ ? window_ : absl::ZeroDuration();
}

void SpinBeforeSleep::WaitEnded(Clock::duration waited) {
  last_wait_within_window_ = absl::FromChrono(waited) <= window_;
}

void SpinBeforeSleep::Relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace callmesh::sidecar

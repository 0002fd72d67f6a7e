// SpinBeforeSleep: whether, and for how long, a thread that ran out of work keeps its CPU and
// watches for the next item before it sleeps on its condition variable.
//
// Why: handing work to a sleeping thread costs a futex wake in the thread that hands it over
// and, when the sleeper's CPU went idle meanwhile, tens of microseconds before it runs again —
// more on a virtual machine, whose host deschedules an idle vCPU. The journal's writer is handed
// a write about three times per async call; at one call in flight those wake-ups were about a
// quarter of the call's latency (bench/README.md "Round six"). A thread that spins is still
// running when the work arrives: no wake-up at all.
//
// Cost: CPU, while traffic flows. It spins only while work tends to come back within the
// window: after a wait longer than the window (sparse traffic, idle) the next wait sleeps at
// once, and spins again only after a wait shorter than the window. So an idle sidecar never
// spins, and traffic sparser than the window costs at most one window per wait that follows a
// short one.
//
//   SpinBeforeSleep spin(absl::Microseconds(300));
//   const auto ran_out = SpinBeforeSleep::Clock::now();
//   spin.Spin([&] { return has_work.load(std::memory_order_acquire); });
//   ... lock, wait for work (at once if it came while spinning), take it ...
//   spin.WaitEnded(SpinBeforeSleep::Clock::now() - ran_out);
//
// The window is real time on a monotonic clock (the CPU is what is spent), never a test's
// fake clock. Not thread-safe: one per waiting thread.
#pragma once

#include <chrono>

#include "absl/time/time.h"

namespace callmesh::sidecar {

class SpinBeforeSleep {
 public:
  using Clock = std::chrono::steady_clock;

  // A zero (or negative) window never spins.
  explicit SpinBeforeSleep(absl::Duration window);

  // How long the next wait spins: the window if the last recorded wait ended within it (or none
  // was recorded yet), zero otherwise.
  absl::Duration NextSpin() const;

  // Records how long the wait that just ended lasted, from running out of work to having some
  // (spinning and sleeping included).
  void WaitEnded(Clock::duration waited);

  // Spins until `ready()` or NextSpin() has passed; whether `ready()` became true. Calls
  // `ready()` once, without spinning, when NextSpin() is zero.
  template <typename Ready>
  bool Spin(Ready ready) const {
    const absl::Duration spin = NextSpin();
    if (spin <= absl::ZeroDuration()) return ready();
    const Clock::time_point end = Clock::now() + absl::ToChronoNanoseconds(spin);
    while (!ready()) {
      if (Clock::now() >= end) return false;
      Relax();
    }
    return true;
  }

 private:
  // A pause between two looks at `ready()`: gives the sibling hyper-thread the core, and costs
  // less power than a tight loop.
  static void Relax();

  const absl::Duration window_;
  bool last_wait_within_window_ = true;
};

}  // namespace callmesh::sidecar

// The parts the call lifecycle runs on, wired for a unit test: a FakeClock, a real journal in
// $TEST_TMPDIR behind an ObservedStore, a registry (no health-check thread), an invoker, the
// dispatch policies of a config and a worker pool on the fake clock. Tests add the dispatcher or
// the deliverer on top and real gRPC targets (ScriptedTarget) on loopback; only time is faked.
//
//   LifecycleHarness h("default_retry: {max_attempts: 3}\n");
//   Dispatcher dispatcher(&h.store, &h.invoker, &h.registry, &h.policies, &h.runner, {}, ...);
#pragma once

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "callmesh/v1/call.pb.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/common/cid.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/testing/observed_store.h"

namespace callmesh::testing {

// A config from YAML with defaults applied; a failed test if it does not parse or validate.
v1::SidecarConfig TestConfig(const std::string& yaml);

// The callback retry plan of the deliverer tests: 3 attempts, back-off 1 s doubling up to 10 s,
// no jitter (so a FakeClock reaches each retry at a known time).
sidecar::RetryPlan ThreeAttemptsNoJitter();

struct LifecycleHarness {
  explicit LifecycleHarness(const std::string& config_yaml = "");
  // Stops the workers, cancels outbound calls and waits for their callbacks.
  ~LifecycleHarness();

  // An envelope for `service`'s OnCompletion (the method ScriptedTarget serves), accepted now
  // with a deadline `timeout` from now.
  v1::CallEnvelope Envelope(const std::string& service, v1::CallKind kind,
                            absl::Duration timeout = absl::Hours(1));
  // A call to "target" that ended SUCCEEDED (reply "reply") with its completion owed to
  // `callback` (delivery PENDING), as the store returned it; a failed test if it cannot be stored.
  v1::Completion Completed(const std::string& callback);
  // Waits until the delivery of `cid` is DEAD_LETTERED and returns its dead letter, which must be
  // the only one; a failed test (and an empty letter) otherwise.
  v1::DeadLetter OnlyDeadLetter(const std::string& cid);

  FakeClock clock;
  const v1::SidecarConfig config;
  std::unique_ptr<sidecar::Journal> journal;
  ObservedStore store;
  sidecar::Registry registry;
  CidGenerator cids;
  sidecar::Invoker invoker;
  const sidecar::DispatchPolicies policies;
  sidecar::TaskRunner runner;
};

}  // namespace callmesh::testing

// Waiting for something a test cannot be told about: polls `condition` every `every` until it
// holds or `timeout` passes, and returns its last value.
//
//   ASSERT_TRUE(WaitUntil([&] { return greeter.started_calls() == 2; }));
//   ASSERT_TRUE(WaitUntil([&] { return ClusterServing(1); }, absl::Seconds(60),
//                         absl::Milliseconds(200)));   // a CLI run per poll: poll less often
#pragma once

#include <functional>

#include "absl/time/time.h"

namespace callmesh::testing {

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout = absl::Seconds(20),
               absl::Duration every = absl::Milliseconds(10));

}  // namespace callmesh::testing

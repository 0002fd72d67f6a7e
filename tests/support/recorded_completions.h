// A CallbackHandler that keeps every completion it receives, for tests of callback delivery.
//
//   RecordedCompletions completions("greeter.v1.Greeter");
//   host.Add(&completions);
//   ... WaitUntil([&] { return completions.received().size() == 1; });
//
// Thread-safe (the host calls HandleCompletion on its threads).
#pragma once

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/call.pb.h"
#include "runtime/sdk/callback_router.h"

namespace callmesh::testing {

class RecordedCompletions final : public CallbackHandler {
 public:
  // Handles the completions of calls to the gRPC service `grpc_service` ("greeter.v1.Greeter").
  explicit RecordedCompletions(std::string grpc_service) : grpc_service_(std::move(grpc_service)) {}

  const char* callmesh_grpc_service() const override { return grpc_service_.c_str(); }
  absl::Status HandleCompletion(const v1::Completion& completion) override {
    absl::MutexLock lock(&mu_);
    received_.push_back(completion);
    return absl::OkStatus();
  }
  // What was received so far, oldest first.
  std::vector<v1::Completion> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  const std::string grpc_service_;
  absl::Mutex mu_;
  std::vector<v1::Completion> received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::testing

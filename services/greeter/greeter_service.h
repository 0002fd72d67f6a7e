// The greeter: the quickstart service. It answers "Hello, <name>!" and reports the callmesh context
// (CID, source, attempt) it saw, so a caller can check what the sidecar passed on.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "services/greeter/greeter.grpc.pb.h"

namespace callmesh::greeter {

class GreeterService final : public ::greeter::v1::Greeter::Service {
 public:
  // Honours HelloRequest.delay_ms (waits, polling for cancellation every few milliseconds) and
  // HelloRequest.fail_code (answers that status). An empty name is INVALID_ARGUMENT.
  grpc::Status SayHello(grpc::ServerContext* context, const ::greeter::v1::HelloRequest* request,
                        ::greeter::v1::HelloReply* reply) override;

  // Calls that ended because the caller cancelled them (or their deadline passed) mid-delay.
  uint64_t cancelled_calls() const { return cancelled_calls_.load(); }
  // Calls that started, cancelled or not.
  uint64_t started_calls() const { return started_calls_.load(); }
  // The callmesh CID of every call that started, in arrival order (one entry per attempt).
  std::vector<std::string> seen_cids() const;

 private:
  std::atomic<uint64_t> cancelled_calls_{0};
  std::atomic<uint64_t> started_calls_{0};
  mutable absl::Mutex mu_;
  std::vector<std::string> seen_cids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::greeter

#include "services/greeter/greeter_service.h"

#include <chrono>
#include <string>
#include <thread>

#include "runtime/sdk/context.h"
#include "spdlog/spdlog.h"

namespace callmesh::greeter {

grpc::Status GreeterService::SayHello(grpc::ServerContext* server_context,
                                      const ::greeter::v1::HelloRequest* request,
                                      ::greeter::v1::HelloReply* reply) {
  started_calls_.fetch_add(1);
  const Context context = Context::From(*server_context);
  {
    absl::MutexLock lock(&mu_);
    seen_cids_.push_back(context.cid());
  }
  spdlog::info("[cid={}] SayHello name={} from {} attempt {}", context.cid(), request->name(),
               context.source(), context.attempt());
  if (request->name().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "HelloRequest.name is empty");
  }
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(request->delay_ms());
  while (std::chrono::steady_clock::now() < until) {
    if (server_context->IsCancelled()) {
      cancelled_calls_.fetch_add(1);
      spdlog::info("[cid={}] SayHello cancelled by the caller", context.cid());
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the caller");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (request->fail_code() != 0) {
    if (request->fail_code() < 0 || request->fail_code() > 16) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "HelloRequest.fail_code must be a gRPC status code 1..16");
    }
    return grpc::Status(
        static_cast<grpc::StatusCode>(request->fail_code()),
        "failing on request (fail_code " + std::to_string(request->fail_code()) + ")");
  }
  reply->set_message("Hello, " + request->name() + "!");
  reply->set_cid(context.cid());
  reply->set_source(context.source());
  reply->set_attempt(context.attempt());
  return grpc::Status::OK;
}

std::vector<std::string> GreeterService::seen_cids() const {
  absl::MutexLock lock(&mu_);
  return seen_cids_;
}

}  // namespace callmesh::greeter

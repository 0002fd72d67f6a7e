#include "runtime/sidecar/testing/scripted_target.h"

#include <grpcpp/server_builder.h>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace callmesh::testing {

// Answers only when the caller cancels (which is also how gRPC ends it at its deadline).
class ScriptedTarget::HeldReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit HeldReactor(ScriptedTarget* target) : target_(target) {}
  void OnCancel() override {
    {
      absl::MutexLock lock(&target_->mu_);
      ++target_->held_cancelled_;
    }
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "held call cancelled by the caller"));
  }
  void OnDone() override { delete this; }

 private:
  ScriptedTarget* const target_;
};

ScriptedTarget::ScriptedTarget() {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

ScriptedTarget::~ScriptedTarget() { server_->Shutdown(); }

void ScriptedTarget::Script(std::vector<Step> steps) {
  absl::MutexLock lock(&mu_);
  script_.insert(script_.end(), steps.begin(), steps.end());
}

void ScriptedTarget::Observe(std::function<void(const Seen&)> observer) {
  absl::MutexLock lock(&mu_);
  observer_ = std::move(observer);
}

std::vector<ScriptedTarget::Seen> ScriptedTarget::calls() const {
  absl::MutexLock lock(&mu_);
  return seen_;
}

bool ScriptedTarget::AwaitCalls(size_t n, absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), real_timeout);
}

size_t ScriptedTarget::held_calls_cancelled() const {
  absl::MutexLock lock(&mu_);
  return held_cancelled_;
}

bool ScriptedTarget::AwaitHeldCallsCancelled(size_t n, absl::Duration real_timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return held_cancelled_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), real_timeout);
}

grpc::ServerUnaryReactor* ScriptedTarget::OnCompletion(grpc::CallbackServerContext* context,
                                                       const v1::Completion* request,
                                                       v1::OnCompletionResponse*) {
  Seen seen;
  for (const auto& [key, value] : context->client_metadata()) {
    if (key == "callmesh-cid") seen.cid = std::string(value.data(), value.size());
    if (key == "callmesh-attempt") seen.attempt = std::string(value.data(), value.size());
    if (key == "traceparent") seen.traceparent = std::string(value.data(), value.size());
    if (key == "tracestate") seen.tracestate = std::string(value.data(), value.size());
    if (key == "callmesh-source") seen.source = std::string(value.data(), value.size());
    if (key == "callmesh-topic") seen.topic = std::string(value.data(), value.size());
    if (key == "callmesh-sequence") seen.sequence = std::string(value.data(), value.size());
  }
  seen.request = *request;
  std::function<void(const Seen&)> observer;
  {
    absl::MutexLock lock(&mu_);
    observer = observer_;
  }
  if (observer) observer(seen);
  static std::atomic<uint64_t> arrivals{0};
  Step step;
  {
    absl::MutexLock lock(&mu_);
    seen.arrival = arrivals.fetch_add(1);
    seen_.push_back(std::move(seen));
    if (!script_.empty()) {
      step = script_.front();
      script_.pop_front();
    }
  }
  if (step.hold) return new HeldReactor(this);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(step.code == grpc::StatusCode::OK
                      ? grpc::Status::OK
                      : grpc::Status(step.code, absl::StrCat("scripted ", step.code)));
  return reactor;
}

}  // namespace callmesh::testing

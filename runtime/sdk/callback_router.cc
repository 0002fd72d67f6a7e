#include "runtime/sdk/callback_router.h"

#include <deque>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace callmesh {

CallInfo CallInfo::From(const v1::Completion& completion) {
  CallInfo info;
  info.cid = completion.cid();
  info.source = completion.source();
  info.service = completion.service();
  info.method = std::string(absl::StripPrefix(completion.method(), "/"));
  info.attempts = completion.attempts();
  info.delivery_attempt = completion.delivery_attempt();
  info.parent_cid = completion.parent_cid();
  info.idempotency_key = completion.idempotency_key();
  info.headers.insert(completion.headers().begin(), completion.headers().end());
  info.state = completion.state();
  return info;
}

absl::Status CompletionStatus(const v1::Completion& completion) {
  switch (completion.state()) {
    case v1::CALL_STATE_SUCCEEDED:
      return absl::OkStatus();
    case v1::CALL_STATE_FAILED: {
      absl::StatusCode code = static_cast<absl::StatusCode>(completion.status_code());
      // A FAILED call always has an error; an OK code here would be a broken record.
      if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
      return absl::Status(code, completion.status_message());
    }
    case v1::CALL_STATE_CANCELLED:
      return absl::CancelledError(completion.status_message().empty()
                                      ? absl::StrCat("call ", completion.cid(), " was cancelled")
                                      : completion.status_message());
    case v1::CALL_STATE_EXPIRED:
      return absl::DeadlineExceededError(absl::StrCat(
          "call ", completion.cid(), " expired: its deadline passed before it finished",
          completion.status_message().empty() ? "" : " (", completion.status_message(),
          completion.status_message().empty() ? "" : ")"));
    default:
      return absl::UnknownError(absl::StrCat("call ", completion.cid(), " is not terminal (state ",
                                             v1::CallState_Name(completion.state()), ")"));
  }
}

void CallbackRouter::Add(CallbackHandler* handler) {
  absl::MutexLock lock(&mu_);
  handlers_[handler->callmesh_grpc_service()] = handler;
}

bool CallbackRouter::empty() const {
  absl::MutexLock lock(&mu_);
  return handlers_.empty();
}

absl::Status CallbackRouter::Route(const v1::Completion& completion) {
  absl::string_view method = completion.method();
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  const absl::string_view service = method.substr(0, method.find('/'));
  CallbackHandler* handler = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = handlers_.find(service);
    if (it != handlers_.end()) handler = it->second;
  }
  if (handler == nullptr) {
    spdlog::warn("[cid={}] callback: no handler for completions of {}", completion.cid(),
                 completion.method());
    return absl::NotFoundError(
        absl::StrCat("no callback handler for method ", completion.method()));
  }
  return handler->HandleCompletion(completion);
}

grpc::Status CallbackRouter::OnCompletion(grpc::ServerContext*, const v1::Completion* completion,
                                          v1::OnCompletionResponse*) {
  absl::Status status = Route(*completion);
  if (!status.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  return grpc::Status::OK;
}

grpc::Status CallbackRouter::OnCompletions(
    grpc::ServerContext*, grpc::ServerReaderWriter<v1::CompletionAck, v1::Completion>* stream) {
  // This thread reads; workers handle and ack. Completions read but not taken by a worker wait in
  // `queue`, at most kStreamConcurrency of them, after which this thread stops reading. A new
  // completion wakes one idle worker, a taken one wakes the reader (waking every idle worker for
  // each completion cost the receiver more CPU than handling it).
  absl::Mutex mu;
  absl::CondVar work_ready;
  absl::CondVar room;
  std::deque<v1::Completion> queue;
  int idle = 0;
  bool closed = false;
  absl::Mutex write_mu;
  std::vector<std::thread> workers;
  auto work = [&] {
    for (;;) {
      v1::Completion completion;
      {
        absl::MutexLock lock(&mu);
        ++idle;
        while (queue.empty() && !closed) work_ready.Wait(&mu);
        --idle;
        if (queue.empty()) return;
        completion = std::move(queue.front());
        queue.pop_front();
        room.Signal();
      }
      const absl::Status status = Route(completion);
      v1::CompletionAck ack;
      ack.set_cid(completion.cid());
      ack.set_delivery_attempt(completion.delivery_attempt());
      ack.set_status_code(static_cast<int>(status.code()));
      ack.set_status_message(std::string(status.message()));
      absl::MutexLock lock(&write_mu);
      // A failed write means the stream is gone; the sidecar redelivers what it did not hear of.
      stream->Write(ack);
    }
  };
  v1::Completion completion;
  while (stream->Read(&completion)) {
    absl::MutexLock lock(&mu);
    while (queue.size() >= static_cast<size_t>(kStreamConcurrency)) room.Wait(&mu);
    queue.push_back(std::move(completion));
    completion.Clear();
    if (static_cast<size_t>(idle) < queue.size() &&
        workers.size() < static_cast<size_t>(kStreamConcurrency)) {
      workers.emplace_back(work);
    }
    work_ready.Signal();
  }
  {
    absl::MutexLock lock(&mu);
    closed = true;
    work_ready.SignalAll();
  }
  for (std::thread& worker : workers) worker.join();
  return grpc::Status::OK;
}

}  // namespace callmesh

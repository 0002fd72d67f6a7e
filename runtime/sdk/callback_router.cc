#include "runtime/sdk/callback_router.h"

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

grpc::Status CallbackRouter::OnCompletion(grpc::ServerContext*, const v1::Completion* completion,
                                          v1::OnCompletionResponse*) {
  absl::string_view method = completion->method();
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  const absl::string_view service = method.substr(0, method.find('/'));
  CallbackHandler* handler = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = handlers_.find(service);
    if (it != handlers_.end()) handler = it->second;
  }
  if (handler == nullptr) {
    spdlog::warn("[cid={}] callback: no handler for completions of {}", completion->cid(),
                 completion->method());
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no callback handler for method ", completion->method()));
  }
  absl::Status status = handler->HandleCompletion(*completion);
  if (!status.ok()) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                        std::string(status.message()));
  }
  return grpc::Status::OK;
}

}  // namespace callmesh

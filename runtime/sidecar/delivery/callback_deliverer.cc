#include "runtime/sidecar/delivery/callback_deliverer.h"

#include "absl/strings/str_cat.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

std::string CallbackOf(const v1::Call& call) {
  if (!call.callback().empty()) return call.callback();
  if (!call.envelope().callback().empty()) return call.envelope().callback();
  return ConventionCallback(call.envelope().source());
}

constexpr char kOnCompletionPath[] = "/callmesh.v1.Callback/OnCompletion";

CallbackDeliverer::CallbackDeliverer(Journal* journal, Invoker* invoker, TaskRunner* runner,
                                     RetryPlan policy)
    : journal_(journal), invoker_(invoker), runner_(runner), policy_(std::move(policy)) {}

void CallbackDeliverer::Deliver(const v1::Completion& completion, const std::string& callback) {
  runner_->Post([this, completion, callback] { Attempt(completion, callback, 1); });
}

void CallbackDeliverer::Attempt(v1::Completion completion, std::string callback, uint32_t attempt) {
  completion.set_delivery_attempt(attempt);
  InvokeCall call;
  call.service = callback;
  call.method_path = kOnCompletionPath;
  call.cid = completion.cid();
  call.source = completion.source();
  call.parent_cid = completion.parent_cid();
  call.attempt = attempt;
  call.deadline = absl::Now() + absl::Seconds(30);
  auto started = invoker_->Start(
      std::move(call), StringToByteBuffer(completion.SerializeAsString()),
      [this, completion, callback, attempt](const grpc::Status& status, grpc::ByteBuffer*) {
        runner_->Post([this, completion, callback, attempt, status] {
          AttemptDone(completion, callback, attempt, status);
        });
      });
  if (!started.ok()) {
    AttemptDone(
        std::move(completion), std::move(callback), attempt,
        grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(started.status().message())));
  }
}

void CallbackDeliverer::AttemptDone(v1::Completion completion, std::string callback,
                                    uint32_t attempt, const grpc::Status& status) {
  const std::string cid = completion.cid();
  if (status.ok()) {
    if (absl::Status s = journal_->SetDelivery(cid, v1::DELIVERY_STATE_DELIVERED, nullptr);
        !s.ok()) {
      spdlog::error("[cid={}] delivered to {} but cannot journal it: {}", cid, callback,
                    s.ToString());
    } else {
      spdlog::debug("[cid={}] completion delivered to {}", cid, callback);
    }
    return;
  }
  if (attempt < policy_.max_attempts) {
    absl::Duration delay;
    {
      absl::MutexLock lock(&mu_);
      delay = policy_.Backoff(attempt, random_);
    }
    spdlog::info("[cid={}] callback {} attempt {} failed ({} {}); retrying in {}", cid, callback,
                 attempt, static_cast<int>(status.error_code()), status.error_message(),
                 absl::FormatDuration(delay));
    runner_->PostAt(absl::Now() + delay, [this, completion = std::move(completion),
                                          callback = std::move(callback), attempt]() mutable {
      Attempt(std::move(completion), std::move(callback), attempt + 1);
    });
    return;
  }
  v1::DeadLetter dead_letter;
  completion.clear_delivery_attempt();
  *dead_letter.mutable_completion() = completion;
  dead_letter.set_callback(callback);
  dead_letter.set_delivery_attempts(attempt);
  dead_letter.set_last_status_code(static_cast<int>(status.error_code()));
  dead_letter.set_last_status_message(status.error_message());
  *dead_letter.mutable_dead_lettered_at() = ToProtoTimestamp(absl::Now());
  if (absl::Status s = journal_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, &dead_letter);
      !s.ok()) {
    spdlog::error("[cid={}] cannot dead-letter: {}", cid, s.ToString());
    return;
  }
  spdlog::warn("[cid={}] completion dead-lettered after {} attempts to {}: {} {}", cid, attempt,
               callback, static_cast<int>(status.error_code()), status.error_message());
}

absl::Status CallbackDeliverer::Redrive(const std::string& cid) {
  absl::StatusOr<v1::Call> call = journal_->GetCall(cid);
  if (!call.ok()) return call.status();
  if (call->callback_delivery() != v1::DELIVERY_STATE_DEAD_LETTERED) {
    return absl::FailedPreconditionError(
        absl::StrCat("call ", cid, " is not dead-lettered (delivery ",
                     v1::DeliveryState_Name(call->callback_delivery()), ")"));
  }
  if (absl::Status s = journal_->SetDelivery(cid, v1::DELIVERY_STATE_PENDING, nullptr); !s.ok()) {
    return s;
  }
  Deliver(call->completion(), CallbackOf(*call));
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar

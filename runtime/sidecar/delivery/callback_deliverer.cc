#include "runtime/sidecar/delivery/callback_deliverer.h"

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/call_states.h"
#include "runtime/sidecar/calls/callback.h"
#include "runtime/sidecar/calls/retry_decision.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

constexpr char kOnCompletionPath[] = "/callmesh.v1.Callback/OnCompletion";
// rpc.method of a delivery's span on each path.
constexpr absl::string_view kOnCompletionMethod = "callmesh.v1.Callback/OnCompletion";
constexpr absl::string_view kOnCompletionsMethod = "callmesh.v1.Callback/OnCompletions";

CallbackDeliverer::CallbackDeliverer(CallStore* store, Invoker* invoker, TaskRunner* runner,
                                     DeliveryPolicy policy)
    : store_(store),
      invoker_(invoker),
      runner_(runner),
      clock_(runner->clock()),
      policy_(std::move(policy)),
      random_(policy_.jitter_seed) {
  policy_.retry.retryable_codes.clear();  // every error: see the header
}

double CallbackDeliverer::Draw() {
  absl::MutexLock lock(&mu_);
  return absl::Uniform(random_, 0.0, 1.0);
}

void CallbackDeliverer::Deliver(const v1::Completion& completion, const std::string& callback) {
  // On the caller's thread: an attempt only queues a message or starts a call.
  Attempt(completion, callback, 1);
}

CallbackDeliverer::~CallbackDeliverer() { Stop(); }

CallbackDeliverer::Work::Work(CallbackDeliverer* deliverer) : deliverer_(deliverer) {
  absl::MutexLock lock(&deliverer_->work_mu_);
  admitted_ = !deliverer_->stopped_;
  if (admitted_) ++deliverer_->working_;
}

CallbackDeliverer::Work::~Work() {
  if (!admitted_) return;
  absl::MutexLock lock(&deliverer_->work_mu_);
  --deliverer_->working_;
}

void CallbackDeliverer::Stop() {
  {
    absl::MutexLock lock(&work_mu_);
    stopped_ = true;
    // Work admitted before may still open a stream or record a result: wait for it, so that the
    // streams collected below are all there will be.
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_) { return working_ == 0; };
    work_mu_.Await(absl::Condition(&idle));
  }
  std::vector<std::shared_ptr<CompletionStream>> streams;
  {
    absl::MutexLock lock(&routes_mu_);
    streams.swap(streams_);
    routes_.clear();
  }
  // Their outstanding attempts end CANCELLED, results that are no longer admitted (see Work).
  for (const auto& stream : streams) stream->Cancel();
  for (const auto& stream : streams) stream->AwaitEnded();
}

void CallbackDeliverer::Attempt(v1::Completion completion, std::string callback, uint32_t attempt) {
  const Work work(this);
  if (!work.admitted()) {
    spdlog::debug("[cid={}] delivery to {} stopped; the completion stays pending", completion.cid(),
                  callback);
    return;
  }
  completion.set_delivery_attempt(attempt);
  // The delivery's span, ended by whichever path reports the attempt's status.
  Span span;
  if (policy_.tracer != nullptr) {
    span = std::make_shared<tracing::CallTracer::Open>(
        policy_.tracer->StartDelivery(completion, callback, attempt));
  }
  // A completion carries a reply of up to max_payload_bytes (the target's channel receives no
  // more) plus its envelope. One over even that goes the unary way, which refuses it alone: on
  // the stream it would break the stream for every completion outstanding on it.
  const bool fits =
      CheckWrappedPayloadSize(completion.ByteSizeLong(), invoker_->options().max_payload_bytes)
          .ok();
  std::shared_ptr<CompletionStream> stream = fits ? StreamFor(callback) : nullptr;
  if (stream == nullptr) {
    PushUnary(std::move(completion), std::move(callback), attempt, std::move(span));
    return;
  }
  v1::Completion sent = completion;
  // On the stream the message carries what OnCompletion sends as metadata (callback.proto).
  if (span != nullptr) {
    sent.set_traceparent(span->traceparent);
    tracing::CallTracer::SetDeliveryMethod(span.get(), kOnCompletionsMethod);
  }
  const bool queued = stream->Send(
      sent, clock_->Now() + policy_.attempt_timeout,
      [this, completion, callback, attempt, span, raw = stream.get()](
          const grpc::Status& status, bool stream_unimplemented) mutable {
        const Work work(this);
        if (!work.admitted()) {
          EndSpan(span, status);
          return;
        }
        if (stream_unimplemented) {
          // Not handed over: the same attempt goes as OnCompletion, and so does what follows.
          MarkUnaryOnly(callback, *raw);
          PushUnary(std::move(completion), std::move(callback), attempt, std::move(span));
          return;
        }
        EndSpan(span, status);
        AttemptDone(std::move(completion), std::move(callback), attempt, status);
      });
  if (!queued) {
    // The stream ended between StreamFor and Send: this attempt goes as OnCompletion.
    if (stream->unimplemented()) MarkUnaryOnly(callback, *stream);
    PushUnary(std::move(completion), std::move(callback), attempt, std::move(span));
  }
}

std::shared_ptr<CompletionStream> CallbackDeliverer::StreamFor(const std::string& callback) {
  absl::StatusOr<std::shared_ptr<Instance>> instance = invoker_->PickInstance(callback);
  // No instance (the unary path reports why), or one on another host, reached through its
  // sidecar's peer listener, which proxies unary calls only.
  if (!instance.ok() || (*instance)->remote()) return nullptr;
  absl::MutexLock lock(&routes_mu_);
  // One route per service and address: a ServiceHost's process is one instance of each of its
  // names (e.g. "audit" and "audit-async-callback"), each with a stream of its own.
  Route& route = routes_[RouteKey(callback, (*instance)->address())];
  if (route.instance.lock() != *instance) route = Route{.instance = *instance};
  if (clock_->Now() < route.unary_until) return nullptr;
  if (route.stream == nullptr || route.stream->ended()) {
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [](const auto& stream) { return stream->ended(); }),
                   streams_.end());
    route.stream = CompletionStream::Open(*instance, clock_);
    streams_.push_back(route.stream);
  }
  return route.stream;
}

std::string CallbackDeliverer::RouteKey(const std::string& callback, const std::string& address) {
  return absl::StrCat(callback, "@", address);
}

void CallbackDeliverer::MarkUnaryOnly(const std::string& callback, const CompletionStream& stream) {
  absl::MutexLock lock(&routes_mu_);
  auto it = routes_.find(RouteKey(callback, stream.instance()->address()));
  if (it == routes_.end() || it->second.stream.get() != &stream) return;  // a newer route
  it->second.unary_until = clock_->Now() + kAskStreamAgainAfter;
}

void CallbackDeliverer::EndSpan(const Span& span, const grpc::Status& status) {
  if (span == nullptr) return;
  policy_.tracer->EndDelivery(std::move(*span), static_cast<int>(status.error_code()),
                              status.error_message());
}

void CallbackDeliverer::PushUnary(v1::Completion completion, std::string callback, uint32_t attempt,
                                  Span span) {
  InvokeCall call;
  call.service = callback;
  call.method_path = kOnCompletionPath;
  call.cid = completion.cid();
  call.source = completion.source();
  call.parent_cid = completion.parent_cid();
  call.traceparent = span != nullptr ? span->traceparent : completion.traceparent();
  call.tracestate = completion.tracestate();
  call.attempt = attempt;
  call.deadline = clock_->Now() + policy_.attempt_timeout;
  call.wraps_payload = true;
  if (span != nullptr) tracing::CallTracer::SetDeliveryMethod(span.get(), kOnCompletionMethod);
  auto started = invoker_->Start(
      std::move(call), StringToByteBuffer(completion.SerializeAsString()),
      [this, completion, callback, attempt, span](const grpc::Status& status, grpc::ByteBuffer*) {
        EndSpan(span, status);
        const Work work(this);
        if (work.admitted()) AttemptDone(completion, callback, attempt, status);
      });
  if (!started.ok()) {
    const grpc::Status status(grpc::StatusCode::UNAVAILABLE,
                              std::string(started.status().message()));
    EndSpan(span, status);
    AttemptDone(std::move(completion), std::move(callback), attempt, status);
  }
}

void CallbackDeliverer::AttemptDone(v1::Completion completion, std::string callback,
                                    uint32_t attempt, const grpc::Status& status) {
  const std::string cid = completion.cid();
  const calls::Decision next =
      calls::DecideAfterAttempt({.attempt = attempt}, static_cast<int>(status.error_code()),
                                clock_->Now(), policy_.retry, Draw());
  // The delivery state is written without waiting for it (a bookkeeping write); its callback
  // only logs, so it may run after the deliverer is gone.
  if (next.step == calls::Step::kSucceed) {
    store_->SetDelivery(cid, v1::DELIVERY_STATE_DELIVERED, std::nullopt,
                        [cid, callback](absl::Status s) {
                          if (!s.ok()) {
                            spdlog::error("[cid={}] delivered to {} but cannot journal it: {}", cid,
                                          callback, s.ToString());
                          } else {
                            spdlog::debug("[cid={}] completion delivered to {}", cid, callback);
                          }
                        });
    return;
  }
  if (next.step == calls::Step::kRetry) {
    spdlog::info("[cid={}] callback {} attempt {} failed ({} {}); retrying in {}", cid, callback,
                 attempt, static_cast<int>(status.error_code()), status.error_message(),
                 absl::FormatDuration(next.delay));
    runner_->PostAt(next.retry_at, [this, completion = std::move(completion),
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
  *dead_letter.mutable_dead_lettered_at() = ToProtoTimestamp(clock_->Now());
  store_->SetDelivery(cid, v1::DELIVERY_STATE_DEAD_LETTERED, std::move(dead_letter),
                      [cid, callback, attempt, code = static_cast<int>(status.error_code()),
                       message = status.error_message()](absl::Status s) {
                        if (!s.ok()) {
                          spdlog::error("[cid={}] cannot dead-letter: {}", cid, s.ToString());
                          return;
                        }
                        spdlog::warn(
                            "[cid={}] completion dead-lettered after {} attempts to {}: {} {}", cid,
                            attempt, callback, code, message);
                      });
}

absl::Status CallbackDeliverer::Redrive(const std::string& cid) {
  absl::StatusOr<v1::Call> call = store_->GetCall(cid);
  if (!call.ok()) return call.status();
  if (call->callback_delivery() != v1::DELIVERY_STATE_DEAD_LETTERED) {
    return absl::FailedPreconditionError(
        absl::StrCat("call ", cid, " is not dead-lettered (delivery ",
                     v1::DeliveryState_Name(call->callback_delivery()), ")"));
  }
  if (absl::Status s = store_->SetDelivery(cid, v1::DELIVERY_STATE_PENDING, nullptr); !s.ok()) {
    return s;
  }
  Deliver(call->completion(), calls::CallbackOfCompleted(*call));
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar

#include "runtime/sidecar/invoke/invoker.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/message_limits.h"
#include "runtime/common/metadata.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {

Invoker::Invoker(Registry* registry, CidGenerator* cids, Options options, Clock* clock)
    : registry_(registry), cids_(cids), options_(options), clock_(clock) {}

absl::StatusOr<std::shared_ptr<ForwardedCall>> Invoker::Start(InvokeCall call,
                                                              grpc::ByteBuffer payload, Done done) {
  if (absl::Status s = call.wraps_payload
                           ? CheckWrappedPayloadSize(payload.Length(), options_.max_payload_bytes)
                           : CheckPayloadSize(payload.Length(), options_.max_payload_bytes);
      !s.ok()) {
    return s;
  }
  for (const auto& [key, value] : call.headers) {
    if (absl::Status s = ValidateHeader(key, value); !s.ok()) return s;
  }
  absl::StatusOr<std::shared_ptr<Instance>> instance = registry_->Pick(call.service, call.reach);
  if (!instance.ok()) return instance.status();

  auto forwarded = std::make_shared<ForwardedCall>();
  forwarded->cid_ = call.cid.empty() ? cids_->Next() : std::move(call.cid);
  forwarded->instance_ = *std::move(instance);
  forwarded->request_ = std::move(payload);

  const absl::Time now = clock_->Now();
  const absl::Time deadline =
      call.deadline == absl::InfiniteFuture() ? now + options_.default_timeout : call.deadline;
  const absl::Time call_deadline =
      call.call_deadline == absl::InfiniteFuture() ? deadline : call.call_deadline;
  grpc::ClientContext& context = forwarded->context_;
  // gRPC keeps deadlines on the real clock: give it the time left on ours.
  context.set_deadline(absl::ToChronoTime(absl::Now() + (deadline - now)));
  context.AddMetadata(kCidMetadata, forwarded->cid_);
  context.AddMetadata(kAttemptMetadata, absl::StrCat(call.attempt));
  context.AddMetadata(kDeadlineMetadata,
                      absl::FormatTime(absl::RFC3339_full, call_deadline, absl::UTCTimeZone()));
  if (!call.source.empty()) context.AddMetadata(kSourceMetadata, call.source);
  if (!call.parent_cid.empty()) context.AddMetadata(kParentCidMetadata, call.parent_cid);
  if (!call.traceparent.empty()) context.AddMetadata(kTraceparentMetadata, call.traceparent);
  if (!call.tracestate.empty()) context.AddMetadata(kTracestateMetadata, call.tracestate);
  for (const auto& [key, value] : call.headers) context.AddMetadata(key, value);
  for (const auto& [key, value] : call.callmesh_metadata) context.AddMetadata(key, value);
  if (forwarded->instance_->remote()) context.AddMetadata(kTargetMetadata, call.service);

  spdlog::debug("[cid={}] forwarding {} to {} at {}{}{} attempt {}", forwarded->cid_,
                call.method_path, call.service, forwarded->instance_->address(),
                forwarded->instance_->remote() ? " via " : "", forwarded->instance_->via(),
                call.attempt);
  std::shared_ptr<ForwardedCall> handle = forwarded;
  ForwardedCall* raw = forwarded.get();
  // On the real clock gRPC's deadline is the same instant, so only another clock (a FakeClock in
  // tests) needs a timer of its own to end the attempt when its time is up.
  if (clock_ != Clock::Real()) {
    raw->timeout_timer_ =
        clock_->ScheduleAt(deadline, [weak = std::weak_ptr<ForwardedCall>(forwarded)] {
          if (std::shared_ptr<ForwardedCall> call = weak.lock()) call->TimeOut();
        });
  }
  {
    absl::MutexLock lock(&in_flight_->mu);
    in_flight_->calls.emplace(raw, forwarded);
  }
  raw->instance_->stub()->UnaryCall(
      &raw->context_, call.method_path, grpc::StubOptions(), &raw->request_, &raw->reply_,
      [forwarded, clock = clock_, in_flight = in_flight_, done = std::move(done),
       method = call.method_path](grpc::Status status) mutable {
        if (forwarded->timeout_timer_ != 0) clock->Cancel(forwarded->timeout_timer_);
        if (forwarded->timed_out_ && status.error_code() == grpc::StatusCode::CANCELLED) {
          status = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded");
        }
        if (status.ok()) {
          spdlog::debug("[cid={}] {} OK", forwarded->cid_, method);
        } else {
          spdlog::info("[cid={}] {} at {} failed: {} {}", forwarded->cid_, method,
                       forwarded->instance_->address(), static_cast<int>(status.error_code()),
                       status.error_message());
        }
        done(status, &forwarded->reply_);
        absl::MutexLock lock(&in_flight->mu);
        in_flight->calls.erase(forwarded.get());
        // Drop the self-reference on this thread, after `done`, so the call outlives it.
        forwarded.reset();
      });
  return handle;
}

void Invoker::CancelAllAndWait() {
  std::vector<std::shared_ptr<ForwardedCall>> calls;
  {
    absl::MutexLock lock(&in_flight_->mu);
    for (auto& [raw, weak] : in_flight_->calls) {
      if (std::shared_ptr<ForwardedCall> call = weak.lock()) calls.push_back(std::move(call));
    }
  }
  for (const std::shared_ptr<ForwardedCall>& call : calls) call->Cancel();
  calls.clear();
  absl::MutexLock lock(&in_flight_->mu);
  auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(in_flight_->mu) {
    return in_flight_->calls.empty();
  };
  in_flight_->mu.Await(absl::Condition(&none));
}

bool IsReservedMetadataKey(absl::string_view key) {
  return absl::StartsWith(key, "grpc-") || absl::StartsWith(key, "callmesh-") ||
         absl::StartsWith(key, ":") || key == "content-type" || key == "user-agent" ||
         key == "te" || key == "host" || key == kTraceparentMetadata || key == kTracestateMetadata;
}

absl::Status CheckPayloadSize(size_t payload_bytes, uint64_t max_payload_bytes) {
  if (payload_bytes <= max_payload_bytes) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "payload of ", payload_bytes, " bytes exceeds max_payload_bytes (", max_payload_bytes, ")"));
}

absl::Status CheckWrappedPayloadSize(size_t message_bytes, uint64_t max_payload_bytes) {
  if (message_bytes <= MaxWrappedMessageBytes(max_payload_bytes)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "message of ", message_bytes, " bytes exceeds max_payload_bytes (", max_payload_bytes,
      ") plus ", kEnvelopeAllowanceBytes, " bytes for its envelope"));
}

absl::Status ValidateHeader(const std::string& key, const std::string& value) {
  const std::string shown = absl::StrCat("header \"", absl::CEscape(key), "\"");
  if (key.empty()) return absl::InvalidArgumentError("header with an empty key");
  for (char c : key) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.')) {
      return absl::InvalidArgumentError(
          absl::StrCat(shown, ": keys may only contain a-z, 0-9, '-', '_' and '.'"));
    }
  }
  if (IsReservedMetadataKey(key)) {
    return absl::InvalidArgumentError(
        absl::StrCat(shown, ": the grpc- and callmesh- prefixes are reserved"));
  }
  if (absl::EndsWith(key, "-bin")) return absl::OkStatus();
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          shown, ": value must be printable ASCII (use a key ending in -bin for bytes)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace callmesh::sidecar

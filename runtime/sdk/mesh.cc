#include "runtime/sdk/mesh.h"

#include <grpcpp/create_channel.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace callmesh {
namespace {

absl::Status ValidateOptions(const MeshOptions& options) {
  if (options.source.empty()) {
    return absl::InvalidArgumentError("MeshOptions.source: required (the mesh name of the caller)");
  }
  if (absl::Status s = ValidateServiceName(options.source, "MeshOptions.source"); !s.ok()) return s;
  if (absl::Status s = ValidateAddress(options.sidecar, "MeshOptions.sidecar"); !s.ok()) return s;
  if (options.reconnect_initial_backoff <= absl::ZeroDuration() ||
      options.reconnect_max_backoff < options.reconnect_initial_backoff) {
    return absl::InvalidArgumentError(
        "MeshOptions.reconnect_initial_backoff: must be > 0 and <= reconnect_max_backoff");
  }
  return absl::OkStatus();
}

bool IsTerminal(v1::CallState state) {
  return state == v1::CALL_STATE_SUCCEEDED || state == v1::CALL_STATE_FAILED ||
         state == v1::CALL_STATE_CANCELLED || state == v1::CALL_STATE_EXPIRED;
}

// The overall timeout of an async call from its relative and absolute limits; zero = unset.
absl::StatusOr<absl::Duration> AsyncTimeout(const AsyncOptions& options) {
  absl::Duration timeout = options.timeout;
  if (timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("AsyncOptions.timeout: must not be negative");
  }
  if (options.deadline != absl::InfiniteFuture()) {
    const absl::Duration left = options.deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("AsyncOptions.deadline: already passed");
    }
    if (timeout == absl::ZeroDuration() || left < timeout) timeout = left;
  }
  return timeout;
}

// What links an outbound call to the call being handled: the parent CID, and the trace context to
// send (`traceparent`, else the parent's; the parent's tracestate goes with the parent's
// traceparent only).
struct CallLinks {
  std::string parent_cid;
  std::string traceparent;
  std::string tracestate;
};

CallLinks LinksOf(const Context* parent, const std::string& traceparent) {
  CallLinks links;
  links.traceparent = !traceparent.empty()
                          ? traceparent
                          : (parent != nullptr ? parent->traceparent() : traceparent);
  if (traceparent.empty() && parent != nullptr && !parent->traceparent().empty()) {
    links.tracestate = parent->tracestate();
  }
  if (parent != nullptr) links.parent_cid = parent->cid();
  return links;
}

// Sends the links of a unary RPC as its metadata; returns the parent CID (for the request).
std::string Link(const Context* parent, const std::string& traceparent,
                 grpc::ClientContext* context) {
  const CallLinks links = LinksOf(parent, traceparent);
  if (!links.traceparent.empty()) context->AddMetadata(kTraceparentMetadata, links.traceparent);
  if (!links.tracestate.empty()) context->AddMetadata(kTracestateMetadata, links.tracestate);
  if (!links.parent_cid.empty()) context->AddMetadata(kParentCidMetadata, links.parent_cid);
  return links.parent_cid;
}

}  // namespace

absl::StatusOr<std::string> ReplyOf(const v1::Completion& completion) {
  absl::Status status = CompletionStatus(completion);
  if (!status.ok()) return status;
  return completion.reply();
}

Mesh::Mesh(MeshOptions options)
    : options_(std::move(options)), options_status_(ValidateOptions(options_)) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      tls::CreateSidecarChannel(options_.sidecar, options_.credentials);
  if (channel.ok()) {
    channel_ = *std::move(channel);
  } else {
    // Every call answers with this error; the channel is never used.
    if (options_status_.ok()) options_status_ = channel.status();
    channel_ = grpc::CreateChannel(options_.sidecar, grpc::InsecureChannelCredentials());
  }
  stub_ = v1::Sidecar::NewStub(channel_);
  if (options_.stream_async_calls) {
    async_stream_ = std::make_unique<InvokeAsyncStreamClient>(stub_.get());
  }
}

Mesh::~Mesh() {
  async_stream_.reset();  // InvokeAsync calls waiting on it end CANCELLED
  std::vector<std::function<void(absl::StatusOr<v1::Completion>)>> orphans;
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
    if (stream_context_ != nullptr) stream_context_->TryCancel();
    for (grpc::ClientContext* context : rpc_contexts_) context->TryCancel();
    for (auto& [cid, slot] : slots_) {
      for (auto& done : slot.done) orphans.push_back(std::move(done));
      slot.done.clear();
      slot.resolved->SignalAll();
    }
    changed_.SignalAll();
  }
  if (stream_thread_.joinable()) stream_thread_.join();
  for (auto& done : orphans) {
    done(absl::CancelledError("callmesh::Mesh destroyed before the call completed"));
  }
  absl::MutexLock lock(&mu_);
  while (active_waits_ > 0 || !rpc_contexts_.empty()) changed_.Wait(&mu_);
}

absl::StatusOr<std::string> Mesh::Invoke(const std::string& service, const std::string& method,
                                         const std::string& payload, const CallOptions& options) {
  if (!options_status_.ok()) return options_status_;
  v1::InvokeRequest request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload);
  request.set_source(options_.source);
  request.mutable_headers()->insert(options.headers.begin(), options.headers.end());
  grpc::ClientContext context;
  absl::Time deadline = absl::InfiniteFuture();
  if (options.timeout > absl::ZeroDuration()) deadline = absl::Now() + options.timeout;
  if (options.parent != nullptr) {
    deadline = std::min(deadline, options.parent->deadline());
  }
  request.set_parent_cid(Link(options.parent, options.traceparent, &context));
  if (deadline != absl::InfiniteFuture()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("Invoke ", service, " ", method, ": deadline already passed"));
    }
    *request.mutable_timeout() = ToProtoDuration(left);
    context.set_deadline(absl::ToChronoTime(deadline));
  }
  v1::InvokeResponse response;
  grpc::Status status = stub_->Invoke(&context, request, &response);
  if (!status.ok()) return ToAbslStatus(status);
  return std::move(*response.mutable_payload());
}

template <typename Request>
Request Mesh::DurableRequest(const std::string& service, const std::string& method,
                             const std::string& payload, const AsyncOptions& options,
                             absl::Duration timeout, const std::string& parent_cid) const {
  Request request;
  request.set_service(service);
  request.set_method(method);
  request.set_payload(payload);
  request.set_source(options_.source);
  request.set_idempotency_key(options.idempotency_key);
  if (timeout > absl::ZeroDuration()) *request.mutable_timeout() = ToProtoDuration(timeout);
  request.mutable_headers()->insert(options.headers.begin(), options.headers.end());
  request.set_parent_cid(parent_cid);
  return request;
}

void Mesh::PrepareDurableRpc(const AsyncOptions& options, grpc::ClientContext* context) const {
  context->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  Link(options.parent, options.traceparent, context);
}

absl::StatusOr<Cid> Mesh::InvokeAsync(const std::string& service, const std::string& method,
                                      const std::string& payload, const AsyncOptions& options) {
  if (!options_status_.ok()) return options_status_;
  absl::StatusOr<absl::Duration> timeout = AsyncTimeout(options);
  if (!timeout.ok()) return timeout.status();
  // Open the stream first, so that it is on its way while the call is accepted.
  EnsureStream();
  const CallLinks links = LinksOf(options.parent, options.traceparent);
  auto request = [&] {
    auto request = DurableRequest<v1::InvokeAsyncRequest>(service, method, payload, options,
                                                          *timeout, links.parent_cid);
    request.set_callback(options.callback);
    return request;
  };
  absl::StatusOr<v1::InvokeAsyncResponse> accepted =
      absl::UnimplementedError("no InvokeAsyncStream");
  if (async_stream_ != nullptr) {
    v1::InvokeAsyncStreamCall call;
    *call.mutable_request() = request();
    call.set_traceparent(links.traceparent);
    call.set_tracestate(links.tracestate);
    accepted = async_stream_->Call(std::move(call), options_.rpc_timeout);
  }
  if (absl::IsUnimplemented(accepted.status())) {
    // Streaming off, or a sidecar without the stream: one unary RPC (the request built again,
    // which happens at most for the first calls to such a sidecar).
    grpc::ClientContext context;
    PrepareDurableRpc(options, &context);
    v1::InvokeAsyncResponse response;
    const grpc::Status status = stub_->InvokeAsync(&context, request(), &response);
    accepted = status.ok() ? absl::StatusOr<v1::InvokeAsyncResponse>(std::move(response))
                           : ToAbslStatus(status);
  }
  if (!accepted.ok()) return accepted.status();
  Issued(accepted->cid());
  if (accepted->deduplicated()) {
    // The first call with this key may have completed before the stream's position: ask once.
    CatchUp({accepted->cid()});
  }
  return accepted->cid();
}

absl::StatusOr<Cid> Mesh::Cast(const std::string& service, const std::string& method,
                               const std::string& payload, const AsyncOptions& options) {
  if (!options_status_.ok()) return options_status_;
  absl::StatusOr<absl::Duration> timeout = AsyncTimeout(options);
  if (!timeout.ok()) return timeout.status();
  grpc::ClientContext context;
  PrepareDurableRpc(options, &context);
  const v1::CastRequest request =
      DurableRequest<v1::CastRequest>(service, method, payload, options, *timeout,
                                      LinksOf(options.parent, options.traceparent).parent_cid);
  v1::CastResponse response;
  grpc::Status status = stub_->Cast(&context, request, &response);
  if (!status.ok()) return ToAbslStatus(status);
  return response.cid();
}

absl::StatusOr<v1::PublishResponse> Mesh::Publish(const std::string& topic,
                                                  const std::string& payload,
                                                  const PublishOptions& options) {
  if (!options_status_.ok()) return options_status_;
  v1::PublishRequest request;
  request.set_topic(topic);
  request.set_payload(payload);
  request.set_source(options_.source);
  request.set_idempotency_key(options.idempotency_key);
  request.mutable_headers()->insert(options.headers.begin(), options.headers.end());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  v1::PublishResponse response;
  grpc::Status status = stub_->Publish(&context, request, &response);
  if (!status.ok()) return ToAbslStatus(status);
  return response;
}

absl::StatusOr<v1::Call> Mesh::GetCall(const Cid& cid) {
  if (!options_status_.ok()) return options_status_;
  v1::GetCallRequest request;
  request.set_cid(cid);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  v1::Call call;
  grpc::Status status = stub_->GetCall(&context, request, &call);
  if (!status.ok()) return ToAbslStatus(status);
  return call;
}

void Mesh::Issued(const Cid& cid) {
  absl::MutexLock lock(&mu_);
  Slot& slot = slots_[cid];
  auto early = unclaimed_.find(cid);
  if (early != unclaimed_.end() && !slot.completion.has_value()) {
    slot.completion = std::move(early->second);
    unclaimed_.erase(early);
    kept_.push_back(cid);
    KeepLocked(cid);
  }
}

absl::StatusOr<v1::Completion> Mesh::Await(const Cid& cid, absl::Duration timeout) {
  if (!options_status_.ok()) return options_status_;
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<v1::Completion> timed_out = absl::DeadlineExceededError(
      absl::StrCat("call ", cid, " not completed within ", absl::FormatDuration(timeout)));
  bool last_look = false;
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::CancelledError("callmesh::Mesh is being destroyed");
    auto unclaimed = unclaimed_.find(cid);
    if (unclaimed != unclaimed_.end()) return unclaimed->second;
    if (auto slot = slots_.find(cid); slot != slots_.end()) {
      const std::shared_ptr<absl::CondVar> resolved = slot->second.resolved;
      ++active_waits_;
      absl::StatusOr<v1::Completion> result = timed_out;
      bool dropped = false;
      while (true) {
        if (closing_) {
          result = absl::CancelledError(
              absl::StrCat("callmesh::Mesh destroyed while awaiting call ", cid));
          break;
        }
        auto it = slots_.find(cid);
        if (it == slots_.end()) {
          dropped = true;
          break;
        }
        if (it->second.completion.has_value()) {
          result = *it->second.completion;
          break;
        }
        if (resolved->WaitWithDeadline(&mu_, deadline) && absl::Now() >= deadline) {
          auto again = slots_.find(cid);
          if (again != slots_.end() && again->second.completion.has_value()) {
            result = *again->second.completion;
          } else {
            last_look = true;
          }
          break;
        }
      }
      --active_waits_;
      changed_.SignalAll();
      if (!dropped && !last_look) return result;
    }
  }
  if (last_look) {
    // Timed out on the stream: one look at the call itself, in case the stream missed it.
    absl::StatusOr<v1::Call> call = GetCall(cid);
    if (call.ok() && IsTerminal(call->completion().state())) return call->completion();
    return timed_out;
  }
  // Not issued here (or dropped from the store): the stream may never carry it.
  return WaitCallOnce(cid, deadline - absl::Now());
}

absl::StatusOr<v1::Completion> Mesh::WaitCallOnce(const Cid& cid, absl::Duration timeout) {
  if (timeout < absl::ZeroDuration()) timeout = absl::ZeroDuration();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout + absl::Seconds(5)));
  {
    absl::MutexLock lock(&mu_);
    if (closing_) return absl::CancelledError("callmesh::Mesh is being destroyed");
    rpc_contexts_.insert(&context);
  }
  v1::WaitCallRequest request;
  request.set_cid(cid);
  // An unset timeout means "until the RPC's deadline"; ask for at least a millisecond.
  *request.mutable_timeout() = ToProtoDuration(std::max(timeout, absl::Milliseconds(1)));
  v1::Call call;
  grpc::Status status = stub_->WaitCall(&context, request, &call);
  {
    absl::MutexLock lock(&mu_);
    rpc_contexts_.erase(&context);
    changed_.SignalAll();
    if (closing_ && !status.ok()) {
      return absl::CancelledError(
          absl::StrCat("callmesh::Mesh destroyed while awaiting call ", cid));
    }
  }
  if (!status.ok()) return ToAbslStatus(status);
  if (!IsTerminal(call.completion().state())) {
    return absl::DeadlineExceededError(absl::StrCat("call ", cid, " not completed within ",
                                                    absl::FormatDuration(timeout), " (still ",
                                                    v1::CallState_Name(call.state()), ")"));
  }
  return call.completion();
}

void Mesh::OnComplete(const Cid& cid, std::function<void(absl::StatusOr<v1::Completion>)> done) {
  absl::StatusOr<v1::Completion> now = absl::FailedPreconditionError(absl::StrCat(
      "OnComplete: call ", cid, " was not issued by this Mesh (use Await or GetCall)"));
  if (!options_status_.ok()) now = options_status_;
  {
    absl::MutexLock lock(&mu_);
    auto it = slots_.find(cid);
    if (closing_) {
      now = absl::CancelledError("callmesh::Mesh is being destroyed");
    } else if (it != slots_.end() && !it->second.completion.has_value()) {
      it->second.done.push_back(std::move(done));
      return;
    } else if (it != slots_.end()) {
      now = *it->second.completion;
    }
  }
  done(std::move(now));
}

void Mesh::EnsureStream() {
  absl::MutexLock lock(&mu_);
  if (!stream_started_ && !closing_) {
    stream_started_ = true;
    stream_thread_ = std::thread([this] { StreamLoop(); });
  }
  // A completion persisted before the subscription would not be streamed ("from now on"), so the
  // first async call waits for it. Past the timeout the call goes ahead: CatchUp and Await's
  // last look cover what the stream might miss.
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return subscribed_ || closing_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), options_.rpc_timeout);
}

void Mesh::CatchUp(const std::vector<Cid>& open) {
  for (const Cid& cid : open) {
    absl::StatusOr<v1::Call> call = GetCall(cid);
    if (call.ok() && IsTerminal(call->completion().state())) Resolve(call->completion());
  }
}

void Mesh::StreamLoop() {
  absl::Duration backoff = options_.reconnect_initial_backoff;
  bool warned = false;
  while (true) {
    grpc::ClientContext context;
    v1::WatchCompletionsRequest request;
    request.set_source(options_.source);
    {
      absl::MutexLock lock(&mu_);
      if (closing_) return;
      stream_context_ = &context;
      request.set_after_sequence(last_sequence_);
    }
    std::unique_ptr<grpc::ClientReader<v1::Completion>> reader =
        stub_->WatchCompletions(&context, request);
    // The response headers mean "subscribed" and say where the sidecar's log stands.
    reader->WaitForInitialMetadata();
    const auto& headers = context.GetServerInitialMetadata();
    auto last = headers.find(kLastSequenceMetadata);
    if (last != headers.end()) {
      uint64_t start = 0;
      std::vector<Cid> open;
      if (absl::SimpleAtoi(absl::string_view(last->second.data(), last->second.size()), &start)) {
        absl::MutexLock lock(&mu_);
        if (request.after_sequence() == 0 && start > last_sequence_) {
          // Watching from now on: what completed before is not replayed, so look up the calls
          // still open once.
          for (const auto& [cid, slot] : slots_) {
            if (!slot.completion.has_value()) open.push_back(cid);
          }
          last_sequence_ = start;
        }
        subscribed_ = true;
      }
      CatchUp(open);
    }
    v1::Completion completion;
    while (reader->Read(&completion)) {
      if (warned) {
        spdlog::info("mesh {}: completion stream from sidecar {} resumed", options_.source,
                     options_.sidecar);
        warned = false;
      }
      backoff = options_.reconnect_initial_backoff;
      Resolve(completion);
    }
    grpc::Status status = reader->Finish();
    absl::MutexLock lock(&mu_);
    stream_context_ = nullptr;
    if (closing_) return;
    if (!warned) {
      spdlog::warn("mesh {}: completion stream from sidecar {} ended ({}: {}); reconnecting",
                   options_.source, options_.sidecar, static_cast<int>(status.error_code()),
                   status.error_message());
      warned = true;
    }
    auto closing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
    mu_.AwaitWithTimeout(absl::Condition(&closing), backoff);
    if (closing_) return;
    backoff = std::min(backoff * 2, options_.reconnect_max_backoff);
  }
}

void Mesh::Resolve(const v1::Completion& completion) {
  std::vector<std::function<void(absl::StatusOr<v1::Completion>)>> ready;
  {
    absl::MutexLock lock(&mu_);
    ++received_;
    last_sequence_ = std::max(last_sequence_, completion.sequence());
    auto it = slots_.find(completion.cid());
    if (it == slots_.end()) {
      if (unclaimed_.emplace(completion.cid(), completion).second) {
        unclaimed_order_.push_back(completion.cid());
        while (unclaimed_order_.size() > options_.max_kept_completions) {
          unclaimed_.erase(unclaimed_order_.front());
          unclaimed_order_.pop_front();
        }
      }
      return;
    }
    if (it->second.completion.has_value()) return;  // a replay of what we already have
    it->second.completion = completion;
    ready.swap(it->second.done);
    kept_.push_back(completion.cid());
    KeepLocked(completion.cid());
    it->second.resolved->SignalAll();
  }
  for (auto& done : ready) done(completion);
}

void Mesh::KeepLocked(const Cid& newest) {
  while (kept_.size() > options_.max_kept_completions) {
    const Cid oldest = kept_.front();
    kept_.pop_front();
    if (oldest == newest) continue;
    if (auto slot = slots_.find(oldest); slot != slots_.end()) {
      slot->second.resolved->SignalAll();  // its Awaits see it dropped
      slots_.erase(slot);
    }
  }
}

uint64_t Mesh::completions_received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

int Mesh::awaiting() const {
  absl::MutexLock lock(&mu_);
  return active_waits_;
}

}  // namespace callmesh

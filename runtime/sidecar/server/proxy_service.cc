#include "runtime/sidecar/server/proxy_service.h"

#include <algorithm>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/sidecar/calls/call_context.h"
#include "runtime/sidecar/server/finish_now.h"

namespace callmesh::sidecar {
namespace {

// One proxied unary RPC: read the request (and make sure no second message follows), forward
// it, write the reply and finish. Deletes itself in OnDone.
class ProxyReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ProxyReactor(grpc::GenericCallbackServerContext* context, const std::string& default_source,
               Invoker* invoker, SyncCalls* sync_calls, const Clock* clock,
               security::Gatekeeper* gatekeeper, ProxyService::Callers callers)
      : context_(context), invoker_(invoker), sync_calls_(sync_calls) {
    absl::Status admitted = callers == ProxyService::Callers::kApps
                                ? AdmitFromApp(*context, default_source, *clock, gatekeeper)
                                : AdmitFromSidecar(*context, *clock, gatekeeper);
    if (!admitted.ok()) {
      sync_calls_->Count(false);
      Finish(ToGrpcStatus(admitted));
      return;
    }
    StartRead(&request_);
  }

  // The first message is forwarded at once; meanwhile a second read waits for the half-close that
  // ends a unary request (waiting for it first would cost a round of callbacks per call). A second
  // message means a streaming method: the forwarded call is cancelled and the caller told so.
  void OnReadDone(bool ok) override {
    if (!have_request_) {
      if (!ok) {
        // The caller half-closed without a message, or went away.
        Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no request message: the proxy forwards unary calls"));
        return;
      }
      have_request_ = true;
      StartRead(&extra_);  // before Forward: no operation may start after Finish
      Forward();
      return;
    }
    if (ok) {
      {
        absl::MutexLock lock(&mu_);
        if (forwarded_ != nullptr) forwarded_->Cancel();
      }
      Fail(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat("method ", context_->method(),
                                     " streams requests; the callmesh proxy forwards unary "
                                     "calls only")));
    }
  }

  void OnWriteDone(bool) override {}

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (forwarded_ != nullptr) forwarded_->Cancel();
  }

  void OnDone() override { delete this; }

 private:
  // The target named by `callmesh-target`; UNIMPLEMENTED for a call without one.
  absl::Status ReadTarget(const grpc::GenericCallbackServerContext& context) {
    call_.service = calls::MetadataOr(context, kTargetMetadata, "");
    if (call_.service.empty()) {
      return absl::UnimplementedError(absl::StrCat(
          "method ", context.method(),
          " is not served by the callmesh sidecar; to proxy it to a service, send the metadata \"",
          kTargetMetadata, ": <service>\""));
    }
    if (absl::Status s = ValidateServiceName(call_.service, kTargetMetadata); !s.ok()) return s;
    call_.method_path = context.method();
    return absl::OkStatus();
  }

  // The caller's metadata that travels on to the target: application headers (the caller's
  // credentials for the sidecar excepted when it authenticated).
  void CopyHeaders(const grpc::GenericCallbackServerContext& context, bool authenticated) {
    for (const auto& [key, value] : context.client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (IsReservedMetadataKey(k)) continue;
      if (authenticated && k == "authorization") continue;
      call_.headers.emplace_back(std::string(k), std::string(value.data(), value.size()));
    }
  }

  // The callmesh metadata the forwarding sidecar set beyond the call's context (e.g. an event's
  // callmesh-topic and callmesh-sequence): passed on as sent. What the Invoker sets itself from
  // the call (cid, source, attempt, deadline, parent, target) is not copied.
  void CopySidecarMetadata(const grpc::GenericCallbackServerContext& context) {
    static constexpr absl::string_view kFromTheCall[] = {kCidMetadata,       kSourceMetadata,
                                                         kAttemptMetadata,   kDeadlineMetadata,
                                                         kParentCidMetadata, kTargetMetadata};
    for (const auto& [key, value] : context.client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (!absl::StartsWith(k, "callmesh-") ||
          std::find(std::begin(kFromTheCall), std::end(kFromTheCall), k) !=
              std::end(kFromTheCall)) {
        continue;
      }
      call_.callmesh_metadata.emplace_back(std::string(k), std::string(value.data(), value.size()));
    }
  }

  // A call from an app on this host: authenticated, its source the caller's identity, a new CID.
  absl::Status AdmitFromApp(const grpc::GenericCallbackServerContext& context,
                            const std::string& default_source, const Clock& clock,
                            security::Gatekeeper* gatekeeper) {
    absl::StatusOr<security::Caller> caller = gatekeeper->Authenticate(context);
    if (!caller.ok()) return caller.status();
    if (absl::Status s = ReadTarget(context); !s.ok()) return s;
    absl::StatusOr<std::string> source = gatekeeper->SourceOf(*caller, "", context);
    if (!source.ok()) return source.status();
    if (absl::Status s = gatekeeper->CheckCall(*caller, call_.service, call_.method_path);
        !s.ok()) {
      return s;
    }
    calls::CallContext call_context =
        calls::ReadCallContext(context, *source, "", default_source, clock);
    TakeCallContext(std::move(call_context), &call_);
    CopyHeaders(context, !caller->anonymous());
    return absl::OkStatus();
  }

  // A call another sidecar forwards: its context as sent, to an instance on this host only.
  absl::Status AdmitFromSidecar(const grpc::GenericCallbackServerContext& context,
                                const Clock& clock, security::Gatekeeper* gatekeeper) {
    absl::StatusOr<std::string> sidecar = gatekeeper->AuthenticateSidecar(context);
    if (!sidecar.ok()) return sidecar.status();
    if (absl::Status s = ReadTarget(context); !s.ok()) return s;
    absl::StatusOr<calls::ForwardedContext> forwarded = calls::ReadForwardedContext(context, clock);
    if (!forwarded.ok()) return forwarded.status();
    if (gatekeeper->authenticating()) {
      const security::Caller source{.identity = forwarded->context.source};
      if (absl::Status s = gatekeeper->CheckCall(source, call_.service, call_.method_path);
          !s.ok()) {
        return s;
      }
    }
    call_.cid = std::move(forwarded->cid);
    call_.attempt = forwarded->attempt;
    call_.call_deadline = forwarded->call_deadline;
    TakeCallContext(std::move(forwarded->context), &call_);
    call_.reach = Registry::Reach::kLocalOnly;
    CopyHeaders(context, /*authenticated=*/true);
    CopySidecarMetadata(context);
    return absl::OkStatus();
  }

  // Ends the RPC once, whichever of the forwarded reply and a protocol error comes first. Never
  // called with the mutex held: once finished, another thread may run OnDone and delete the
  // reactor.
  void Fail(const grpc::Status& status) { FinishOnce(status, nullptr); }

  void FinishOnce(const grpc::Status& status, grpc::ByteBuffer* reply) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    if (admitted_) {
      sync_calls_->Finish(status.ok());
    } else {
      sync_calls_->Count(status.ok());
    }
    if (record_ != nullptr) record_->End(status);
    if (reply != nullptr) {
      reply_ = std::move(*reply);
      StartWriteAndFinish(&reply_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  // Runs inside OnReadDone, so the reactor outlives it even if the reply is already back.
  void Forward() {
    if (absl::Status admitted = sync_calls_->Admit(); !admitted.ok()) {
      Fail(ToGrpcStatus(admitted));
      return;
    }
    admitted_ = true;
    if (call_.cid.empty()) call_.cid = invoker_->NextCid();
    context_->AddInitialMetadata(kCidMetadata, call_.cid);
    record_ = sync_calls_->Record(&call_);
    auto started = invoker_->Start(std::move(call_), std::move(request_),
                                   [this](const grpc::Status& status, grpc::ByteBuffer* reply) {
                                     FinishOnce(status, status.ok() ? reply : nullptr);
                                   });
    if (!started.ok()) {
      Fail(ToGrpcStatus(started.status()));
      return;
    }
    absl::MutexLock lock(&mu_);
    forwarded_ = *std::move(started);
    if (cancelled_) forwarded_->Cancel();
  }

  grpc::GenericCallbackServerContext* const context_;
  Invoker* const invoker_;
  SyncCalls* const sync_calls_;
  InvokeCall call_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  grpc::ByteBuffer reply_;
  bool have_request_ = false;
  // Set before the forwarded call starts; read when it finishes (ordered by gRPC).
  bool admitted_ = false;
  // Set in Forward for a call whose end is access-logged.
  std::unique_ptr<SyncCallRecord> record_;
  absl::Mutex mu_;
  std::shared_ptr<ForwardedCall> forwarded_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

ProxyService::ProxyService(std::string default_source, Invoker* invoker, SyncCalls* sync_calls,
                           const Clock* clock, security::Gatekeeper* gatekeeper, Callers callers)
    : default_source_(std::move(default_source)),
      invoker_(invoker),
      sync_calls_(sync_calls),
      clock_(clock),
      gatekeeper_(gatekeeper != nullptr ? gatekeeper : security::Gatekeeper::Open()),
      callers_(callers) {}

grpc::ServerGenericBidiReactor* ProxyService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new ProxyReactor(context, default_source_, invoker_, sync_calls_, clock_, gatekeeper_,
                          callers_);
}

}  // namespace callmesh::sidecar

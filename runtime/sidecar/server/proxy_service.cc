#include "runtime/sidecar/server/proxy_service.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/metadata.h"
#include "runtime/common/names.h"
#include "runtime/sidecar/server/call_context.h"

namespace callmesh::sidecar {
namespace {

// One proxied unary RPC: read the request (and make sure no second message follows), forward
// it, write the reply and finish. Deletes itself in OnDone.
class ProxyReactor final : public grpc::ServerGenericBidiReactor {
 public:
  ProxyReactor(grpc::GenericCallbackServerContext* context, const std::string& default_source,
               Invoker* invoker, InvokeCounters* counters)
      : context_(context), invoker_(invoker), counters_(counters) {
    call_.service = MetadataOr(*context, kTargetMetadata, "");
    if (call_.service.empty()) {
      counters_->Count(false);
      Finish(grpc::Status(
          grpc::StatusCode::UNIMPLEMENTED,
          absl::StrCat("method ", context->method(),
                       " is not served by the callmesh sidecar; to proxy it to a service, send "
                       "the metadata \"",
                       kTargetMetadata, ": <service>\"")));
      return;
    }
    if (absl::Status s = ValidateServiceName(call_.service, kTargetMetadata); !s.ok()) {
      counters_->Count(false);
      Finish(ToGrpcStatus(s));
      return;
    }
    call_.method_path = context->method();
    call_.source = MetadataOr(*context, kSourceMetadata, default_source);
    call_.parent_cid = MetadataOr(*context, kParentCidMetadata, "");
    call_.traceparent = MetadataOr(*context, kTraceparentMetadata, "");
    call_.deadline = DeadlineOf(*context);
    for (const auto& [key, value] : context->client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (IsReservedMetadataKey(k)) continue;
      call_.headers.emplace_back(std::string(k), std::string(value.data(), value.size()));
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!have_request_) {
      if (!ok) {
        // The caller half-closed without a message, or went away.
        Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no request message: the proxy forwards unary calls"));
        return;
      }
      have_request_ = true;
      StartRead(&extra_);  // Expect the half-close that ends a unary request.
      return;
    }
    if (ok) {
      Fail(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        absl::StrCat("method ", context_->method(),
                                     " streams requests; the callmesh proxy forwards unary "
                                     "calls only")));
      return;
    }
    Forward();
  }

  void OnWriteDone(bool) override {}

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (forwarded_ != nullptr) forwarded_->Cancel();
  }

  void OnDone() override { delete this; }

 private:
  void Fail(const grpc::Status& status) {
    counters_->Count(false);
    Finish(status);
  }

  // Finish is never called with the mutex held: once finished, another thread may run OnDone and
  // delete the reactor.
  void Forward() {
    absl::Status refused;
    {
      absl::MutexLock lock(&mu_);
      auto started = invoker_->Start(std::move(call_), std::move(request_),
                                     [this](const grpc::Status& status, grpc::ByteBuffer* reply) {
                                       OnForwarded(status, reply);
                                     });
      if (started.ok()) {
        forwarded_ = *std::move(started);
        context_->AddInitialMetadata(kCidMetadata, forwarded_->cid());
        if (cancelled_) forwarded_->Cancel();
      } else {
        refused = started.status();
      }
    }
    if (!refused.ok()) Fail(ToGrpcStatus(refused));
  }

  void OnForwarded(const grpc::Status& status, grpc::ByteBuffer* reply) {
    { absl::MutexLock lock(&mu_); }  // Wait until Forward has stored the call.
    counters_->Count(status.ok());
    if (status.ok()) {
      reply_ = std::move(*reply);
      StartWriteAndFinish(&reply_, grpc::WriteOptions(), status);
    } else {
      Finish(status);
    }
  }

  grpc::GenericCallbackServerContext* const context_;
  Invoker* const invoker_;
  InvokeCounters* const counters_;
  InvokeCall call_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  grpc::ByteBuffer reply_;
  bool have_request_ = false;
  absl::Mutex mu_;
  std::shared_ptr<ForwardedCall> forwarded_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

ProxyService::ProxyService(std::string default_source, Invoker* invoker, InvokeCounters* counters)
    : default_source_(std::move(default_source)), invoker_(invoker), counters_(counters) {}

grpc::ServerGenericBidiReactor* ProxyService::CreateReactor(
    grpc::GenericCallbackServerContext* context) {
  return new ProxyReactor(context, default_source_, invoker_, counters_);
}

}  // namespace callmesh::sidecar

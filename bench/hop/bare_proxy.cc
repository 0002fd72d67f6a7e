// The barest unary byte-forwarding proxy gRPC 1.51 allows, on either API, to measure what any
// forwarding hop costs and whether the sidecar's callback API is what its sync hop pays for
// (bench/README.md "Round eight"; compare.py):
//   --api=cq        the completion-queue async API: --threads threads, each with its own server
//                   CQ, which also carries the outbound calls its thread starts (no hand-offs
//                   beyond gRPC core's own)
//   --api=callback  the callback API, as the sidecar's proxy (a generic bidi reactor forwarding
//                   with the generic stub's callback unary call)
// No metadata, no auth, no metrics, no deadline: every call goes to --target on its own method.
// Usage: bare_proxy --api=cq --target=127.0.0.1:PORT [--threads=1] [--listen=127.0.0.1:0]
//        [--ready-file=PATH]   (the address bound is written there)
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Call {
  enum Step { kRequested, kRead, kForwarded, kDone } step = kRequested;
  grpc::GenericServerContext server_context;
  grpc::GenericServerAsyncReaderWriter stream{&server_context};
  grpc::ByteBuffer request, reply;
  grpc::ClientContext client_context;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> outbound;
  grpc::Status status;
};

void Serve(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq,
           grpc::GenericStub* stub) {
  auto request_new = [&] {
    Call* call = new Call();
    service->RequestCall(&call->server_context, &call->stream, cq, cq, call);
  };
  request_new();
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) {
    Call* call = static_cast<Call*>(tag);
    switch (call->step) {
      case Call::kRequested:
        request_new();
        if (!ok) {
          delete call;
          break;
        }
        call->step = Call::kRead;
        call->stream.Read(&call->request, call);
        break;
      case Call::kRead:
        if (!ok) {
          call->step = Call::kDone;
          call->stream.Finish(grpc::Status::CANCELLED, call);
          break;
        }
        call->step = Call::kForwarded;
        call->outbound = stub->PrepareUnaryCall(&call->client_context,
                                                call->server_context.method(), call->request, cq);
        call->outbound->StartCall();
        call->outbound->Finish(&call->reply, &call->status, call);
        break;
      case Call::kForwarded:
        call->step = Call::kDone;
        if (call->status.ok()) {
          call->stream.WriteAndFinish(call->reply, grpc::WriteOptions(), grpc::Status::OK, call);
        } else {
          call->stream.Finish(call->status, call);
        }
        break;
      case Call::kDone:
        delete call;
        break;
    }
  }
}

// The callback API: read the one request message, forward it, write the reply and finish.
class CallbackProxy final : public grpc::CallbackGenericService {
 public:
  explicit CallbackProxy(grpc::GenericStub* stub) : stub_(stub) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    class Reactor final : public grpc::ServerGenericBidiReactor {
     public:
      Reactor(grpc::GenericCallbackServerContext* context, grpc::GenericStub* stub)
          : context_(context), stub_(stub) {
        StartRead(&request_);
      }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
          return;
        }
        stub_->UnaryCall(&client_context_, context_->method(), grpc::StubOptions(), &request_,
                         &reply_, [this](grpc::Status status) {
                           if (status.ok()) {
                             StartWriteAndFinish(&reply_, grpc::WriteOptions(), status);
                           } else {
                             Finish(status);
                           }
                         });
      }
      void OnDone() override { delete this; }

     private:
      grpc::GenericCallbackServerContext* context_;
      grpc::GenericStub* stub_;
      grpc::ClientContext client_context_;
      grpc::ByteBuffer request_, reply_;
    };
    return new Reactor(context, stub_);
  }

 private:
  grpc::GenericStub* stub_;
};

std::string Flag(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--" + name + "=", 0) == 0) return a.substr(name.size() + 3);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string listen = Flag(argc, argv, "listen", "127.0.0.1:0");
  const std::string target = Flag(argc, argv, "target", "");
  const std::string api = Flag(argc, argv, "api", "cq");
  const int threads = std::stoi(Flag(argc, argv, "threads", "1"));
  if (target.empty() || (api != "cq" && api != "callback") || threads < 1) {
    std::fprintf(stderr, "usage: bare_proxy --api=cq|callback --target=HOST:PORT [--threads=N]\n");
    return 2;
  }
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::AsyncGenericService async_service;
  CallbackProxy callback_service(&stub);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  if (api == "cq") {
    builder.RegisterAsyncGenericService(&async_service);
    for (int i = 0; i < threads; ++i) cqs.push_back(builder.AddCompletionQueue());
  } else {
    builder.RegisterCallbackGenericService(&callback_service);
  }
  auto server = builder.BuildAndStart();
  // The address bound, for bench/run.py's Proc (which waits for the file).
  const std::string ready_file = Flag(argc, argv, "ready-file", "");
  if (!ready_file.empty()) {
    std::FILE* ready = std::fopen(ready_file.c_str(), "w");
    std::fprintf(ready, "127.0.0.1:%d\n", port);
    std::fclose(ready);
  }
  std::vector<std::thread> workers;
  for (auto& cq : cqs) workers.emplace_back(Serve, &async_service, cq.get(), &stub);
  server->Wait();
}

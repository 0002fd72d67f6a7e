// bare_forwarder: forwards every unary call it receives, as bytes and on the same method path,
// to --target, and nothing else: no callmesh metadata, security, admission, access log, tracing
// or interceptors. It measures what gRPC 1.51 itself costs per forwarded call, so that the
// sidecar's sync path can be compared with the floor of each API it could be built on:
//
//   bare_forwarder --api=callback --listen=127.0.0.1:0 --target=127.0.0.1:50051
//   bare_forwarder --api=cq --threads=1 --listen=127.0.0.1:0 --target=127.0.0.1:50051
//
// --api=callback: CallbackGenericService + GenericStub::UnaryCall, the APIs callmeshd's proxy
// uses (gRPC runs every reaction on its own threads). --api=cq: AsyncGenericService and
// GenericStub::PrepareUnaryCall on one completion queue per thread: the thread that receives a
// request starts the outbound call on its own queue, so the reply, the answer and the next request
// are all handled on that thread (run to completion). Prints "listening on <address>" once
// serving, and writes the address to --ready-file. A request stream of more than one message is not
// detected here (callmeshd's proxy answers it UNIMPLEMENTED). Not a test; asserts nothing.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "runtime/common/flags.h"

ABSL_FLAG(std::string, api, "cq", "callback | cq");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Where every call is forwarded.");
ABSL_FLAG(int, threads, 1, "--api=cq: threads, each with its own completion queue.");
ABSL_FLAG(bool, callback_health, false,
          "Also serve gRPC's default health service (callback API in gRPC 1.51), as callmeshd "
          "does: shows whether gRPC's callback threads, once they exist, slow the cq path.");
ABSL_FLAG(std::string, ready_file, "",
          "Once serving, the bound address is written here (as bench/run.py's Proc expects).");

namespace {

// --api=callback: one reactor per call, as in callmeshd's ProxyReactor.
class CallbackForwarder final : public grpc::CallbackGenericService {
 public:
  explicit CallbackForwarder(grpc::GenericStub* stub) : stub_(stub) {}

  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return new Reactor(context, stub_);
  }

 private:
  class Reactor final : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(grpc::GenericCallbackServerContext* context, grpc::GenericStub* stub)
        : context_(context), stub_(stub) {
      StartRead(&request_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
      }
      outbound_.set_deadline(context_->deadline());
      stub_->UnaryCall(&outbound_, context_->method(), grpc::StubOptions(), &request_, &reply_,
                       [this](grpc::Status status) {
                         if (status.ok()) {
                           StartWriteAndFinish(&reply_, grpc::WriteOptions(), status);
                         } else {
                           Finish(status);
                         }
                       });
    }
    void OnDone() override { delete this; }

   private:
    grpc::GenericCallbackServerContext* const context_;
    grpc::GenericStub* const stub_;
    grpc::ClientContext outbound_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer reply_;
  };
  grpc::GenericStub* const stub_;
};

// --api=cq: one call's state machine; each step is a completion-queue tag (the Call itself).
class CqCall {
 public:
  CqCall(grpc::AsyncGenericService* service, grpc::ServerCompletionQueue* cq,
         grpc::GenericStub* stub)
      : service_(service), cq_(cq), stub_(stub), stream_(&server_context_) {
    service_->RequestCall(&server_context_, &stream_, cq_, cq_, this);
  }

  // Advances the call after its current step completed with `ok`.
  void Proceed(bool ok) {
    switch (step_) {
      case Step::kRequested:
        if (!ok) {  // the server is shutting down
          delete this;
          return;
        }
        new CqCall(service_, cq_, stub_);  // the next incoming call
        step_ = Step::kReading;
        stream_.Read(&request_, this);
        return;
      case Step::kReading:
        if (!ok) {
          step_ = Step::kFinishing;
          stream_.Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"),
                         this);
          return;
        }
        step_ = Step::kForwarding;
        outbound_.set_deadline(server_context_.deadline());
        reader_ = stub_->PrepareUnaryCall(&outbound_, server_context_.method(), request_, cq_);
        reader_->StartCall();
        reader_->Finish(&reply_, &status_, this);
        return;
      case Step::kForwarding:
        step_ = Step::kFinishing;
        if (status_.ok()) {
          stream_.WriteAndFinish(reply_, grpc::WriteOptions(), status_, this);
        } else {
          stream_.Finish(status_, this);
        }
        return;
      case Step::kFinishing:
        delete this;
        return;
    }
  }

 private:
  enum class Step { kRequested, kReading, kForwarding, kFinishing };
  grpc::AsyncGenericService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::GenericStub* const stub_;
  grpc::GenericServerContext server_context_;
  grpc::GenericServerAsyncReaderWriter stream_;
  grpc::ClientContext outbound_;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
  grpc::Status status_;
  Step step_ = Step::kRequested;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const std::string api = absl::GetFlag(FLAGS_api);
  if (api != "callback" && api != "cq") {
    std::cerr << "bare_forwarder: --api must be callback or cq, got \"" << api << "\"\n";
    return 2;
  }
  grpc::GenericStub stub(
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials()));
  if (absl::GetFlag(FLAGS_callback_health)) grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  CallbackForwarder callback_forwarder(&stub);
  grpc::AsyncGenericService async_service;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  if (api == "callback") {
    builder.RegisterCallbackGenericService(&callback_forwarder);
  } else {
    builder.RegisterAsyncGenericService(&async_service);
    for (int i = 0; i < absl::GetFlag(FLAGS_threads); ++i) {
      queues.push_back(builder.AddCompletionQueue());
    }
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "bare_forwarder: cannot listen on " << absl::GetFlag(FLAGS_listen) << "\n";
    return 1;
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string address = listen.substr(0, listen.rfind(':')) + ":" + std::to_string(port);
  std::cout << "listening on " << address << std::endl;
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    // Written whole, then renamed: a reader never sees half an address.
    std::ofstream(ready + ".tmp") << address << "\n";
    std::rename((ready + ".tmp").c_str(), ready.c_str());
  }
  std::vector<std::thread> threads;
  for (auto& queue : queues) {
    threads.emplace_back([cq = queue.get(), &async_service, &stub] {
      new CqCall(&async_service, cq, &stub);
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) static_cast<CqCall*>(tag)->Proceed(ok);
    });
  }
  server->Wait();  // until killed
  return 0;
}

// async_client: the asynchronous half of the quickstart. Through the local sidecar it
//   1. sends an InvokeAsync with an explicit callback service ("quickstart-audit"),
//   2. sends one without, so the completion goes to "<source>-async-callback" by convention,
//   3. sends a slow one and polls it by CID until it is done,
//   4. reads the three completions back from a WatchCompletions stream that names their CIDs.
// The two callback services are hosted in this process.
#include <grpcpp/create_channel.h>

#include <iostream>
#include <set>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/flags.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter.pb.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, source, "quickstart", "Mesh name to call as.");

namespace {

// Prints each completion it receives and remembers the CIDs.
class PrintingCallback final : public callmesh::v1::Callback::Service {
 public:
  explicit PrintingCallback(std::string name) : name_(std::move(name)) {}
  grpc::Status OnCompletion(grpc::ServerContext*, const callmesh::v1::Completion* completion,
                            callmesh::v1::OnCompletionResponse*) override {
    greeter::v1::HelloReply reply;
    reply.ParseFromString(completion->reply());
    absl::MutexLock lock(&mu_);
    std::cout << "  callback " << name_ << " got cid=" << completion->cid() << " "
              << callmesh::v1::CallState_Name(completion->state()) << " \"" << reply.message()
              << "\"\n"
              << std::flush;
    received_.insert(completion->cid());
    return grpc::Status::OK;
  }
  bool WaitFor(const std::string& cid) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, &cid]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.count(cid) > 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(30));
  }

 private:
  const std::string name_;
  absl::Mutex mu_;
  std::set<std::string> received_ ABSL_GUARDED_BY(mu_);
};

std::string Hello(const std::string& name, uint32_t delay_ms = 0) {
  greeter::v1::HelloRequest request;
  request.set_name(name);
  request.set_delay_ms(delay_ms);
  return request.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("async_client [--sidecar ADDR] [--source NAME]");
  std::vector<std::string> storage;
  std::vector<char*> args = callmesh::DashedFlagsToUnderscores(argc, argv, &storage);
  absl::ParseCommandLine(static_cast<int>(args.size()), args.data());
  const std::string sidecar = absl::GetFlag(FLAGS_sidecar);
  const std::string source = absl::GetFlag(FLAGS_source);

  PrintingCallback audit("quickstart-audit"), convention(source + "-async-callback");
  callmesh::ServiceHost audit_host({.name = "quickstart-audit", .sidecar = sidecar});
  callmesh::ServiceHost convention_host({.name = source + "-async-callback", .sidecar = sidecar});
  audit_host.AddService(&audit);
  convention_host.AddService(&convention);
  for (callmesh::ServiceHost* host : {&audit_host, &convention_host}) {
    if (absl::Status s = host->Start(); !s.ok()) {
      std::cerr << "async_client: " << s.message() << "\n";
      return 1;
    }
  }
  auto stub = callmesh::v1::Sidecar::NewStub(
      grpc::CreateChannel(sidecar, grpc::InsecureChannelCredentials()));
  auto invoke_async = [&](const std::string& payload, const std::string& callback,
                          std::string* cid) {
    callmesh::v1::InvokeAsyncRequest request;
    request.set_service("greeter");
    request.set_method("greeter.v1.Greeter/SayHello");
    request.set_payload(payload);
    request.set_source(source);
    request.set_callback(callback);
    callmesh::v1::InvokeAsyncResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::Status status = stub->InvokeAsync(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "InvokeAsync failed: " << status.error_code() << " " << status.error_message()
                << "\n";
      return false;
    }
    *cid = response.cid();
    return true;
  };

  std::string first, second, slow;
  std::cout << "1. InvokeAsync with callback=quickstart-audit\n";
  if (!invoke_async(Hello("async world"), "quickstart-audit", &first)) return 1;
  std::cout << "  accepted cid=" << first << "\n";
  if (!audit.WaitFor(first)) return 1;

  std::cout << "2. InvokeAsync without a callback: delivered to " << source
            << "-async-callback by convention\n";
  if (!invoke_async(Hello("convention"), "", &second)) return 1;
  std::cout << "  accepted cid=" << second << "\n";
  if (!convention.WaitFor(second)) return 1;

  std::cout << "3. A slow call (1.5 s), polled by CID with GetCall\n";
  if (!invoke_async(Hello("patient", 1500), "", &slow)) return 1;
  std::cout << "  accepted cid=" << slow << "\n";
  while (true) {
    callmesh::v1::GetCallRequest get;
    get.set_cid(slow);
    callmesh::v1::Call call;
    grpc::ClientContext context;
    grpc::Status status = stub->GetCall(&context, get, &call);
    if (!status.ok()) {
      std::cerr << "GetCall failed: " << status.error_message() << "\n";
      return 1;
    }
    std::cout << "  poll: " << callmesh::v1::CallState_Name(call.state()) << " (attempts "
              << call.attempts() << ")\n";
    if (call.has_completion() && call.completion().state() != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  }
  convention.WaitFor(slow);

  std::cout << "4. WatchCompletions(cids=the three above) streams their retained completions\n";
  callmesh::v1::WatchCompletionsRequest watch;
  for (const std::string* cid : {&first, &second, &slow}) watch.add_cids(*cid);
  grpc::ClientContext watch_context;
  watch_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->WatchCompletions(&watch_context, watch);
  callmesh::v1::Completion completion;
  for (int i = 0; i < 3 && reader->Read(&completion); ++i) {
    std::cout << "  watch: sequence " << completion.sequence() << " cid=" << completion.cid() << " "
              << callmesh::v1::CallState_Name(completion.state()) << "\n";
  }
  watch_context.TryCancel();
  audit_host.Shutdown();
  convention_host.Shutdown();
  return 0;
}

// callbacks_client: two async calls to "worker".
//   1. with callback = "callbacks-audit": a second host in this process, serving WorkerCallbacks;
//   2. with no callback: the outcome goes to "callbacks-client-async-callback", the convention
//      name that this client's own host registers because it has callbacks.
// Each callback prints the CID it got and the CID the worker saw; they must equal the CID the
// call returned. Exits 1 otherwise.
#include <iostream>
#include <map>

#include "absl/flags/flag.h"
#include "absl/synchronization/mutex.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"
#include "services/callbacks/callbacks.callmesh.h"
#include "services/common/example_main.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");

namespace {

constexpr char kSource[] = "callbacks-client";

// Remembers who received each CID's outcome, and the CID the worker saw.
class Receiver final : public callbacks::v1::WorkerCallbacks {
 public:
  explicit Receiver(std::string name) : name_(std::move(name)) {}
  void OnWork(const callmesh::CallInfo& call, const callbacks::v1::WorkReply& reply) override {
    absl::MutexLock lock(&mu_);
    std::cout << "  " << name_ << ": OnWork cid=" << call.cid << " job=" << reply.job()
              << " (the worker saw cid=" << reply.cid() << ")\n"
              << std::flush;
    seen_[call.cid] = reply.cid();
  }
  void OnWorkError(const callmesh::CallInfo& call, const absl::Status& error) override {
    absl::MutexLock lock(&mu_);
    std::cout << "  " << name_ << ": OnWorkError cid=" << call.cid << " " << error << "\n";
    seen_[call.cid] = "";
  }
  // The CID the worker saw for `cid`, once its outcome arrived here (up to 30 s).
  std::optional<std::string> WaitFor(const std::string& cid) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.count(cid) > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(30))) return std::nullopt;
    return seen_[cid];
  }

 private:
  const std::string name_;
  absl::Mutex mu_;
  std::map<std::string, std::string> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "callbacks_client [--sidecar ADDR]");
  const std::string sidecar = absl::GetFlag(FLAGS_sidecar);
  Receiver audit("callbacks-audit"), own(std::string(kSource) + "-async-callback");
  callmesh::ServiceHost audit_host({.name = "callbacks-audit", .sidecar = sidecar});
  audit_host.AddCallbacks(&audit);
  callmesh::ServiceHost own_host({.name = kSource, .sidecar = sidecar});
  own_host.AddCallbacks(&own);
  for (callmesh::ServiceHost* host : {&audit_host, &own_host}) {
    if (absl::Status s = host->Start(); !s.ok()) {
      std::cerr << "callbacks_client: " << s << "\n";
      return 1;
    }
  }
  callmesh::Mesh mesh({.sidecar = sidecar, .source = kSource});
  callbacks::v1::WorkerClient worker(mesh, "worker");
  bool ok = true;
  auto run = [&](const std::string& job, const std::string& callback, Receiver& receiver) {
    callbacks::v1::WorkRequest request;
    request.set_job(job);
    absl::StatusOr<callmesh::Cid> cid = worker.WorkAsync(request, {.callback = callback});
    if (!cid.ok()) {
      std::cerr << "callbacks_client: WorkAsync failed: " << cid.status() << "\n";
      ok = false;
      return;
    }
    std::cout << "  sent cid=" << *cid << "\n" << std::flush;
    std::optional<std::string> worker_saw = receiver.WaitFor(*cid);
    if (!worker_saw.has_value() || *worker_saw != *cid) {
      std::cerr << "callbacks_client: outcome of " << *cid << " did not arrive with the same CID\n";
      ok = false;
      return;
    }
    std::cout << "  same CID at caller, worker and callback: " << *cid << "\n";
  };
  std::cout << "1. WorkAsync with callback=callbacks-audit (explicit)\n";
  run("audit-me", "callbacks-audit", audit);
  std::cout << "2. WorkAsync without a callback: " << kSource << "-async-callback by convention\n";
  run("by-convention", "", own);
  audit_host.Shutdown();
  own_host.Shutdown();
  return ok ? 0 : 1;
}

// quotes_demo: serves acme.quotes.v1.Quotes as mesh service "quotes" through the sidecar at
// $CALLMESH_SIDECAR, then calls it three ways through the mesh with the generated QuotesClient:
// a sync call, an async call whose outcome arrives at the typed callback OnGetQuote, and an async
// call whose reply is awaited. Exits 0 only if every answer is the expected one.
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "acme/quotes/v1/quotes.callmesh.h"
#include "acme/quotes/v1/quotes.grpc.pb.h"
#include "callmesh/context.h"
#include "callmesh/mesh.h"
#include "callmesh/service_host.h"

namespace {

constexpr char kSource[] = "quotes-demo";

int64_t PriceOf(const std::string& symbol) { return 100 * static_cast<int64_t>(symbol.size()); }

class QuotesServer final : public acme::quotes::v1::Quotes::Service {
  grpc::Status GetQuote(grpc::ServerContext* server_context,
                        const acme::quotes::v1::QuoteRequest* request,
                        acme::quotes::v1::Quote* reply) override {
    reply->set_symbol(request->symbol());
    reply->set_price_cents(PriceOf(request->symbol()));
    reply->set_cid(callmesh::Context::From(*server_context).cid());
    return grpc::Status::OK;
  }
};

// Outcomes of async GetQuote calls, pushed by the sidecar.
class QuoteCallbacks final : public acme::quotes::v1::QuotesCallbacks {
 public:
  void OnGetQuote(const callmesh::CallInfo& call, const acme::quotes::v1::Quote& reply) override {
    absl::MutexLock lock(&mu_);
    replies_[call.cid] = reply;
  }
  void OnGetQuoteError(const callmesh::CallInfo& call, const absl::Status& error) override {
    std::cerr << "quotes_demo: OnGetQuoteError cid=" << call.cid << " " << error << "\n";
  }
  std::optional<acme::quotes::v1::Quote> WaitFor(const std::string& cid) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return replies_.count(cid) > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(60))) return std::nullopt;
    return replies_[cid];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, acme::quotes::v1::Quote> replies_ ABSL_GUARDED_BY(mu_);
};

bool Check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n" << std::flush;
  return ok;
}

acme::quotes::v1::QuoteRequest Request(const std::string& symbol) {
  acme::quotes::v1::QuoteRequest request;
  request.set_symbol(symbol);
  return request;
}

}  // namespace

int main() {
  // The sidecar address comes from $CALLMESH_SIDECAR (the SDK's default).
  QuotesServer server;
  callmesh::ServiceHost quotes_host({.name = "quotes"});
  quotes_host.AddService(&server);
  QuoteCallbacks callbacks;
  callmesh::ServiceHost caller_host({.name = kSource});
  caller_host.AddCallbacks(&callbacks);  // also registers "quotes-demo-async-callback"
  for (callmesh::ServiceHost* host : {&quotes_host, &caller_host}) {
    if (absl::Status started = host->Start(); !started.ok()) {
      std::cerr << "quotes_demo: " << started << "\n";
      return 1;
    }
  }
  std::cout << "serving quotes on " << quotes_host.address() << ", sidecar "
            << callmesh::DefaultSidecarAddress() << "\n";

  callmesh::Mesh mesh({.source = kSource});
  acme::quotes::v1::QuotesClient quotes(mesh, "quotes");
  bool ok = true;

  absl::StatusOr<acme::quotes::v1::Quote> sync = quotes.GetQuote(Request("ACME"));
  ok &= Check(
      sync.ok() && sync->price_cents() == PriceOf("ACME"),
      "sync GetQuote(ACME) = " + (sync.ok() ? sync->ShortDebugString() : sync.status().ToString()));

  absl::StatusOr<callmesh::Cid> pushed = quotes.GetQuoteAsync(Request("GLOBEX"));
  std::optional<acme::quotes::v1::Quote> at_callback;
  if (pushed.ok()) at_callback = callbacks.WaitFor(*pushed);
  ok &= Check(at_callback.has_value() && at_callback->price_cents() == PriceOf("GLOBEX") &&
                  at_callback->cid() == *pushed,
              "async GetQuote(GLOBEX) answered at OnGetQuote, cid " +
                  (pushed.ok() ? *pushed : pushed.status().ToString()));

  absl::StatusOr<callmesh::Cid> awaited_cid = quotes.GetQuoteAsync(Request("INITECH"));
  absl::StatusOr<acme::quotes::v1::Quote> awaited =
      awaited_cid.ok() ? quotes.AwaitGetQuote(*awaited_cid, absl::Seconds(60))
                       : absl::StatusOr<acme::quotes::v1::Quote>(awaited_cid.status());
  ok &= Check(awaited.ok() && awaited->price_cents() == PriceOf("INITECH") &&
                  awaited->cid() == *awaited_cid,
              "AwaitGetQuote(INITECH) = " +
                  (awaited.ok() ? awaited->ShortDebugString() : awaited.status().ToString()));

  caller_host.Shutdown();
  quotes_host.Shutdown();
  return ok ? 0 : 1;
}

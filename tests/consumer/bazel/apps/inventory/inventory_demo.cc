// inventory_demo: serves example.inventory.v1.Inventory as mesh service "inventory" through the
// sidecar at $CALLMESH_SIDECAR, then calls it three ways through the mesh with the generated
// InventoryClient: sync, async answered at the typed callback OnCountStock, async awaited.
// Exits 0 only if every answer is the expected one.
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "apps/inventory/inventory.callmesh.h"
#include "apps/inventory/inventory.grpc.pb.h"
#include "runtime/sdk/context.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"

namespace {

namespace inventory = example::inventory::v1;

constexpr char kSource[] = "inventory-demo";

int32_t StockOf(const std::string& sku) { return static_cast<int32_t>(sku.size()) * 3; }

class InventoryServer final : public inventory::Inventory::Service {
  grpc::Status CountStock(grpc::ServerContext* server_context, const inventory::StockQuery* query,
                          inventory::StockLevel* level) override {
    level->set_sku(query->sku());
    level->set_count(StockOf(query->sku()));
    level->set_cid(callmesh::Context::From(*server_context).cid());
    return grpc::Status::OK;
  }
};

// Outcomes of async CountStock calls, pushed by the sidecar.
class StockCallbacks final : public inventory::InventoryCallbacks {
 public:
  void OnCountStock(const callmesh::CallInfo& call, const inventory::StockLevel& level) override {
    absl::MutexLock lock(&mu_);
    levels_[call.cid] = level;
  }
  void OnCountStockError(const callmesh::CallInfo& call, const absl::Status& error) override {
    std::cerr << "inventory_demo: OnCountStockError cid=" << call.cid << " " << error << "\n";
  }
  std::optional<inventory::StockLevel> WaitFor(const std::string& cid) {
    absl::MutexLock lock(&mu_);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return levels_.count(cid) > 0; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(60))) return std::nullopt;
    return levels_[cid];
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, inventory::StockLevel> levels_ ABSL_GUARDED_BY(mu_);
};

bool Check(bool ok, const std::string& what) {
  std::cout << (ok ? "ok   " : "FAIL ") << what << "\n" << std::flush;
  return ok;
}

inventory::StockQuery Query(const std::string& sku) {
  inventory::StockQuery query;
  query.set_sku(sku);
  return query;
}

}  // namespace

int main() {
  // The sidecar address comes from $CALLMESH_SIDECAR (the SDK's default).
  InventoryServer server;
  callmesh::ServiceHost inventory_host({.name = "inventory"});
  inventory_host.AddService(&server);
  StockCallbacks callbacks;
  callmesh::ServiceHost caller_host({.name = kSource});
  caller_host.AddCallbacks(&callbacks);  // also registers "inventory-demo-async-callback"
  for (callmesh::ServiceHost* host : {&inventory_host, &caller_host}) {
    if (absl::Status started = host->Start(); !started.ok()) {
      std::cerr << "inventory_demo: " << started << "\n";
      return 1;
    }
  }
  std::cout << "serving inventory on " << inventory_host.address() << ", sidecar "
            << callmesh::DefaultSidecarAddress() << "\n";

  callmesh::Mesh mesh({.source = kSource});
  inventory::InventoryClient client(mesh, "inventory");
  bool ok = true;

  absl::StatusOr<inventory::StockLevel> sync = client.CountStock(Query("sku-1"));
  ok &= Check(sync.ok() && sync->count() == StockOf("sku-1"),
              "sync CountStock(sku-1) = " +
                  (sync.ok() ? sync->ShortDebugString() : sync.status().ToString()));

  absl::StatusOr<callmesh::Cid> pushed = client.CountStockAsync(Query("sku-22"));
  std::optional<inventory::StockLevel> at_callback;
  if (pushed.ok()) at_callback = callbacks.WaitFor(*pushed);
  ok &= Check(at_callback.has_value() && at_callback->count() == StockOf("sku-22") &&
                  at_callback->cid() == *pushed,
              "async CountStock(sku-22) answered at OnCountStock, cid " +
                  (pushed.ok() ? *pushed : pushed.status().ToString()));

  absl::StatusOr<callmesh::Cid> awaited_cid = client.CountStockAsync(Query("sku-333"));
  absl::StatusOr<inventory::StockLevel> awaited =
      awaited_cid.ok() ? client.AwaitCountStock(*awaited_cid, absl::Seconds(60))
                       : absl::StatusOr<inventory::StockLevel>(awaited_cid.status());
  ok &= Check(
      awaited.ok() && awaited->count() == StockOf("sku-333") && awaited->cid() == *awaited_cid,
      "AwaitCountStock(sku-333) = " +
          (awaited.ok() ? awaited->ShortDebugString() : awaited.status().ToString()));

  caller_host.Shutdown();
  inventory_host.Shutdown();
  return ok ? 0 : 1;
}

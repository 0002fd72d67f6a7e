// billing_server: subscribes mesh service "billing" to OrderPlaced (PARALLEL: events handled
// concurrently) and logs the invoice it would issue for each order.
#include "absl/flags/flag.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/orders/orders.callmesh.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");

namespace {

class Billing final : public orders::v1::OrderEventsSubscriber {
 public:
  absl::Status OnOrderPlaced(const callmesh::EventContext& context,
                             const orders::v1::OrderPlaced& order) override {
    spdlog::info(
        "billing: invoice for {} to {}: {}.{:02d} EUR (event {} seq {} from {}, attempt {})",
        order.order_id(), order.customer(), order.total_cents() / 100, order.total_cents() % 100,
        context.event_id(), context.sequence(), context.publisher(), context.attempt());
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "billing_server [--sidecar ADDR] [--listen ADDR]");
  Billing billing;
  callmesh::ServiceHost host({.name = "billing",
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddSubscriber(&billing);
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}

// shipping_server: subscribes mesh service "shipping" to OrderPlaced ORDERED (one event in flight
// for the whole service, in topic order). Run it more than once: the instances compete, each
// event goes to one of them. `--instance` names this instance in its log.
#include "absl/flags/flag.h"
#include "runtime/sdk/service_host.h"
#include "services/common/example_main.h"
#include "services/orders/orders.callmesh.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "Address to serve on (port 0 = any free port).");
ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(std::string, ready_file, "", "Once serving, write the bound address to this file.");
ABSL_FLAG(std::string, instance, "shipping", "Name of this instance in the log.");

namespace {

class Shipping final : public orders::v1::OrderEventsSubscriber {
 public:
  explicit Shipping(std::string instance) : instance_(std::move(instance)) {}
  absl::Status OnOrderPlaced(const callmesh::EventContext& context,
                             const orders::v1::OrderPlaced& order) override {
    spdlog::info("{}: shipping {} to {} (seq {})", instance_, order.order_id(), order.customer(),
                 context.sequence());
    return absl::OkStatus();
  }

 private:
  const std::string instance_;
};

}  // namespace

int main(int argc, char** argv) {
  callmesh::examples::InitExample(
      argc, argv, "shipping_server [--sidecar ADDR] [--listen ADDR] [--instance NAME]");
  Shipping shipping(absl::GetFlag(FLAGS_instance));
  callmesh::ServiceHost host({.name = "shipping",
                              .listen = absl::GetFlag(FLAGS_listen),
                              .sidecar = absl::GetFlag(FLAGS_sidecar)});
  host.AddSubscriber(&shipping, {.mode = callmesh::v1::SUBSCRIPTION_MODE_ORDERED});
  return callmesh::examples::ServeUntilStopped(host, absl::GetFlag(FLAGS_ready_file));
}

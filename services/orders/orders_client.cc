// orders_client: the orders service at checkout. Publishes `--count` OrderPlaced events through
// the typed publisher and prints, for each, the event ID, its sequence in the topic and how many
// subscribing services it goes to. Exits 1 if a publish fails.
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "runtime/sdk/mesh.h"
#include "services/common/example_main.h"
#include "services/orders/orders.callmesh.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of the local callmeshd.");
ABSL_FLAG(int, count, 6, "How many orders to place.");

int main(int argc, char** argv) {
  callmesh::examples::InitExample(argc, argv, "orders_client [--sidecar ADDR] [--count N]");
  callmesh::Mesh mesh({.sidecar = absl::GetFlag(FLAGS_sidecar), .source = "orders"});
  orders::v1::OrderEventsPublisher publisher(mesh);
  const char* customers[] = {"ada", "grace", "linus"};
  for (int i = 1; i <= absl::GetFlag(FLAGS_count); ++i) {
    orders::v1::OrderPlaced order;
    order.set_order_id(absl::StrCat("o-", i));
    order.set_customer(customers[(i - 1) % 3]);
    order.set_total_cents(1000 * i + 99);
    // The order ID as idempotency key: placing the same order twice publishes it once.
    absl::StatusOr<callmesh::v1::PublishResponse> published =
        publisher.PublishOrderPlaced(order, {.idempotency_key = order.order_id()});
    if (!published.ok()) {
      std::cerr << "orders: publishing " << order.order_id() << " failed: " << published.status()
                << "\n";
      return 1;
    }
    std::cout << "orders: published " << order.order_id() << " as event " << published->event_id()
              << " (sequence " << published->sequence() << ", to " << published->subscribers()
              << " subscribing services)\n";
  }
  return 0;
}

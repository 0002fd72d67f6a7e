// The code generated for an event service (tools/protoc-gen-callmesh/testdata/events.proto) end to
// end through a real sidecar (callmesh::Sidecar in this process, its embedded journal on disk): a
// typed publisher's events reach a typed subscriber that a ServiceHost serves and subscribes, with
// their context; a handler's error is retried; the registration lists the gRPC services the host
// serves.
#include <grpcpp/create_channel.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "tests/support/sidecar_process.h"
#include "tools/protoc-gen-callmesh/testdata/events.callmesh.h"

namespace shop::v1 {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::WaitUntil;

struct Received {
  std::string what;
  std::string order_id;
  std::string topic;
  uint64_t sequence = 0;
  std::string event_id;
  std::string publisher;
  uint32_t attempt = 0;
};

// Records every delivery; fails the first delivery of an order whose id starts with "flaky".
class RecordingSubscriber final : public OrderEventsSubscriber {
 public:
  absl::Status OnOrderPlaced(const ::callmesh::EventContext& context,
                             const OrderPlaced& event) override {
    return Record("placed", event.order_id(), context);
  }
  absl::Status OnOrderCancelled(const ::callmesh::EventContext& context,
                                const OrderCancelled& event) override {
    return Record("cancelled", event.order_id(), context);
  }
  std::vector<Received> received() const {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  absl::Status Record(const std::string& what, const std::string& order_id,
                      const ::callmesh::EventContext& context) {
    absl::MutexLock lock(&mu_);
    received_.push_back({what, order_id, context.topic(), context.sequence(), context.event_id(),
                         context.publisher(), context.attempt()});
    if (order_id.rfind("flaky", 0) == 0 && context.attempt() == 1) {
      return absl::UnavailableError("not yet");
    }
    return absl::OkStatus();
  }
  mutable absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
};

class GeneratedEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = InProcessSidecar::Start(
        {.config_yaml = "max_payload_bytes: 4096\n"
                        "default_retry: {max_attempts: 3, initial_backoff: 10ms, "
                        "max_backoff: 20ms}\n"});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
  }
  std::unique_ptr<InProcessSidecar> sidecar_;
};

TEST_F(GeneratedEventsTest, TypedSubscriberReceivesTypedPublish) {
  RecordingSubscriber billing;
  ::callmesh::ServiceHost host({.name = "billing", .sidecar = sidecar_->address()});
  host.AddSubscriber(&billing, {.mode = ::callmesh::v1::SUBSCRIPTION_MODE_ORDERED});
  ASSERT_TRUE(host.Start().ok());

  ::callmesh::Mesh mesh({.sidecar = sidecar_->address(), .source = "orders"});
  OrderEventsPublisher publisher(mesh);
  OrderPlaced placed;
  placed.set_order_id("o-1");
  placed.set_total_cents(1250);
  absl::StatusOr<::callmesh::v1::PublishResponse> first = publisher.PublishOrderPlaced(placed);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->subscribers(), 1u);
  EXPECT_EQ(first->sequence(), 1u);
  OrderCancelled cancelled;
  cancelled.set_order_id("flaky-2");
  absl::StatusOr<::callmesh::v1::PublishResponse> second =
      publisher.PublishOrderCancelled(cancelled);
  ASSERT_TRUE(second.ok()) << second.status();

  // "flaky-2" is refused once, then redelivered: three deliveries in all.
  ASSERT_TRUE(WaitUntil([&] { return billing.received().size() >= 3; }));
  const std::vector<Received> got = billing.received();
  ASSERT_EQ(got.size(), 3u);
  // Each topic has its own order (ORDERED is per subscription, and each event of the service is
  // a topic of its own): the two topics' deliveries may interleave either way.
  std::vector<Received> placed_got;
  std::vector<Received> cancelled_got;
  for (const Received& r : got) (r.what == "placed" ? placed_got : cancelled_got).push_back(r);
  ASSERT_EQ(placed_got.size(), 1u);
  ASSERT_EQ(cancelled_got.size(), 2u);
  EXPECT_EQ(placed_got[0].order_id, "o-1");
  EXPECT_EQ(placed_got[0].topic, "shop.v1.OrderEvents.OrderPlaced");
  EXPECT_EQ(placed_got[0].topic, OrderEventsPublisher::kOrderPlacedTopic);
  EXPECT_EQ(placed_got[0].sequence, 1u);
  EXPECT_EQ(placed_got[0].event_id, first->event_id());
  EXPECT_EQ(placed_got[0].publisher, "orders");
  EXPECT_EQ(placed_got[0].attempt, 1u);
  EXPECT_EQ(cancelled_got[0].what, "cancelled");
  EXPECT_EQ(cancelled_got[0].topic, "shop.v1.OrderEvents.OrderCancelled");
  EXPECT_EQ(cancelled_got[0].event_id, second->event_id());
  EXPECT_EQ(cancelled_got[0].attempt, 1u);
  EXPECT_EQ(cancelled_got[1].event_id, second->event_id());
  EXPECT_EQ(cancelled_got[1].attempt, 2u);

  // The registration carried both subscriptions (ORDERED) and the gRPC services served.
  auto stub = ::callmesh::v1::Sidecar::NewStub(
      grpc::CreateChannel(sidecar_->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  ::callmesh::v1::ListServicesResponse services;
  ASSERT_TRUE(stub->ListServices(&context, {}, &services).ok());
  bool found = false;
  for (const ::callmesh::v1::ServiceInfo& service : services.services()) {
    if (service.name() != "billing") continue;
    found = true;
    ASSERT_EQ(service.instances_size(), 1);
    EXPECT_EQ(std::vector<std::string>(service.instances(0).grpc_services().begin(),
                                       service.instances(0).grpc_services().end()),
              std::vector<std::string>{"shop.v1.OrderEvents"});
  }
  EXPECT_TRUE(found);
  grpc::ClientContext topics_context;
  ::callmesh::v1::ListTopicsResponse topics;
  ASSERT_TRUE(stub->ListTopics(&topics_context, {}, &topics).ok());
  int subscriptions = 0;
  for (const auto& topic : topics.topics()) {
    for (const auto& subscription : topic.subscriptions()) {
      EXPECT_EQ(subscription.service(), "billing");
      EXPECT_EQ(subscription.mode(), ::callmesh::v1::SUBSCRIPTION_MODE_ORDERED);
      ++subscriptions;
    }
  }
  EXPECT_EQ(subscriptions, 2);
  host.Shutdown();
}

TEST_F(GeneratedEventsTest, PublishErrorsComeBackUnchanged) {
  ::callmesh::Mesh mesh({.sidecar = sidecar_->address(), .source = "orders"});
  OrderEventsPublisher publisher(mesh);
  OrderPlaced placed;
  placed.set_order_id(std::string(8192, 'x'));  // over max_payload_bytes
  absl::StatusOr<::callmesh::v1::PublishResponse> refused = publisher.PublishOrderPlaced(placed);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  // Published with no subscriber: durable, goes to nobody.
  placed.set_order_id("o-1");
  absl::StatusOr<::callmesh::v1::PublishResponse> alone = publisher.PublishOrderPlaced(placed);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->subscribers(), 0u);
}

}  // namespace
}  // namespace shop::v1

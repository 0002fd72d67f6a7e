// Publish/subscribe through the Sidecar API of an in-process sidecar on a FakeClock, with real
// loopback gRPC subscribers (ScriptedTarget) and the real journal: fan-out with competing
// instances, ordered delivery under retries, replay, retention, a subscriber down then up, dead
// letters and redrive, idempotent publish, bad input, restart.
#include <grpcpp/create_channel.h>

#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "runtime/sidecar/testing/scripted_target.h"

namespace callmesh {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::ScriptedTarget;

constexpr char kMethod[] = "callmesh.v1.Callback/OnCompletion";

// YAML of a subscribing service with `instances` (list of addresses).
std::string Service(const std::string& name, const std::vector<const ScriptedTarget*>& instances,
                    const std::string& extra = "", const std::string& topic = "orders") {
  std::string addresses;
  for (const ScriptedTarget* target : instances) {
    absl::StrAppend(&addresses, addresses.empty() ? "" : ", ", "'", target->address(), "'");
  }
  return absl::StrCat("  - name: ", name, "\n    addresses: [", addresses, "]\n",
                      "    subscriptions: [{topic: ", topic, ", method: ", kMethod, extra, "}]\n",
                      "    retry: {max_attempts: 3, initial_backoff: 1s, max_backoff: 1s}\n");
}

// The tag the test put in the payload of each delivery seen by `targets`, in arrival order.
std::vector<std::string> Tags(const std::vector<const ScriptedTarget*>& targets) {
  std::vector<std::string> tags;
  for (const ScriptedTarget* target : targets) {
    for (const auto& seen : target->calls()) tags.push_back(seen.request.cid());
  }
  return tags;
}

class PubSubTest : public ::testing::Test {
 protected:
  void StartSidecar(const std::string& yaml) {
    auto started = InProcessSidecar::Start(
        {.config_yaml = absl::StrCat("name: shop\nmax_payload_bytes: 4096\n", yaml),
         .env = {.clock = &clock_, .jitter_seed = 1}});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
    stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
  }

  // RegisterService of `address` as an instance of `service` that takes callbacks and subscribes
  // to `topic`, delivered as calls of `method`.
  grpc::Status RegisterSubscriber(const std::string& service, const std::string& address,
                                  const std::string& topic, const std::string& method = kMethod) {
    v1::RegisterServiceRequest request;
    request.set_name(service);
    request.set_address(address);
    request.add_grpc_services("callmesh.v1.Callback");
    v1::Subscription* sub = request.add_subscriptions();
    sub->set_topic(topic);
    sub->set_method(method);
    grpc::ClientContext context;
    v1::RegisterServiceResponse response;
    return stub_->RegisterService(&context, request, &response);
  }

  grpc::Status Publish(const std::string& topic, const std::string& tag,
                       v1::PublishResponse* response, const std::string& key = "") {
    v1::Completion payload;
    payload.set_cid(tag);
    grpc::ClientContext context;
    v1::PublishRequest request;
    request.set_topic(topic);
    request.set_payload(payload.SerializeAsString());
    request.set_idempotency_key(key);
    return stub_->Publish(&context, request, response);
  }
  v1::PublishResponse MustPublish(const std::string& tag, const std::string& topic = "orders") {
    v1::PublishResponse response;
    const grpc::Status status = Publish(topic, tag, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Moves the fake clock in small steps until `done` (back-off timers, the wait for an instance);
  // the step count is a safety net for a broken test, not a measurement.
  bool AdvanceUntil(const std::function<bool()>& done) {
    for (int i = 0; i < 3000; ++i) {
      if (done()) return true;
      clock_.Advance(absl::Milliseconds(100));
      absl::SleepFor(absl::Milliseconds(2));
    }
    return done();
  }

  // Waits (in real time, the fake clock standing still) until `service` has every event.
  bool AwaitCaughtUp(const std::string& service) {
    for (int i = 0; i < 6000; ++i) {
      const auto topics = Topics();
      const v1::SubscriptionInfo* sub = FindSubscription(topics, service);
      if (sub != nullptr && sub->lag() == 0 && sub->in_flight() == 0) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  v1::ListTopicsResponse Topics() {
    grpc::ClientContext context;
    v1::ListTopicsResponse response;
    EXPECT_TRUE(stub_->ListTopics(&context, v1::ListTopicsRequest(), &response).ok());
    return response;
  }
  const v1::SubscriptionInfo* FindSubscription(const v1::ListTopicsResponse& topics,
                                               const std::string& service) {
    for (const auto& topic : topics.topics()) {
      for (const auto& sub : topic.subscriptions()) {
        if (sub.service() == service) return &sub;
      }
    }
    return nullptr;
  }

  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  std::unique_ptr<InProcessSidecar> sidecar_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
};

TEST_F(PubSubTest, EachEventReachesOneInstanceOfEverySubscribingService) {
  ScriptedTarget billing, shipping_a, shipping_b, audit;
  StartSidecar(absl::StrCat("services:\n", Service("billing", {&billing}),
                            Service("shipping", {&shipping_a, &shipping_b}),
                            Service("audit", {&audit})));
  constexpr int kEvents = 40;
  std::set<std::string> event_ids;
  for (int i = 1; i <= kEvents; ++i) {
    const v1::PublishResponse published = MustPublish(absl::StrCat("order-", i));
    EXPECT_EQ(published.subscribers(), 3u);
    EXPECT_EQ(published.sequence(), static_cast<uint64_t>(i));
    event_ids.insert(published.event_id());
  }
  ASSERT_TRUE(billing.AwaitCalls(kEvents));
  ASSERT_TRUE(audit.AwaitCalls(kEvents));
  ASSERT_TRUE(AdvanceUntil(
      [&] { return shipping_a.calls().size() + shipping_b.calls().size() >= kEvents; }));
  // Let anything extra arrive before counting: every subscription's position reaches the end.
  ASSERT_TRUE(AdvanceUntil([&] {
    const auto topics = Topics();
    for (const char* service : {"billing", "shipping", "audit"}) {
      const auto* sub = FindSubscription(topics, service);
      if (sub == nullptr || sub->lag() != 0 || sub->in_flight() != 0) return false;
    }
    return true;
  }));
  for (const std::vector<const ScriptedTarget*>& service :
       std::vector<std::vector<const ScriptedTarget*>>{
           {&billing}, {&shipping_a, &shipping_b}, {&audit}}) {
    std::map<std::string, int> per_event;
    for (const ScriptedTarget* target : service) {
      for (const auto& seen : target->calls()) {
        ++per_event[seen.cid];
        EXPECT_EQ(seen.topic, "orders");
        EXPECT_EQ(seen.source, "shop");
        EXPECT_EQ(seen.attempt, "1");
      }
    }
    EXPECT_EQ(per_event.size(), static_cast<size_t>(kEvents));
    for (const auto& [event_id, count] : per_event) {
      EXPECT_EQ(count, 1) << event_id;  // exactly once per service without faults
      EXPECT_TRUE(event_ids.count(event_id) > 0) << "phantom " << event_id;
    }
  }
  // The two shipping instances compete: both got work.
  EXPECT_GT(shipping_a.calls().size(), 0u);
  EXPECT_GT(shipping_b.calls().size(), 0u);
}

TEST_F(PubSubTest, OrderedSubscriptionKeepsTopicOrderUnderRetries) {
  ScriptedTarget ledger;
  const auto unavailable = ScriptedTarget::Answer(grpc::StatusCode::UNAVAILABLE);
  // Events 1 and 3 fail twice, event 2 once.
  ledger.Script({unavailable, unavailable, ScriptedTarget::Answer(grpc::StatusCode::OK),
                 unavailable, ScriptedTarget::Answer(grpc::StatusCode::OK), unavailable,
                 unavailable});
  StartSidecar(absl::StrCat("services:\n",
                            Service("ledger", {&ledger}, ", mode: SUBSCRIPTION_MODE_ORDERED")));
  for (int i = 1; i <= 6; ++i) MustPublish(absl::StrCat("e", i));
  ASSERT_TRUE(AdvanceUntil([&] { return ledger.calls().size() >= 11; }));
  const std::vector<std::string> expected = {"e1", "e1", "e1", "e2", "e2", "e3",
                                             "e3", "e3", "e4", "e5", "e6"};
  EXPECT_EQ(Tags({&ledger}), expected);
  const auto calls = ledger.calls();
  EXPECT_EQ(calls[2].attempt, "3");
  EXPECT_EQ(calls[2].sequence, "1");
  EXPECT_EQ(calls[10].sequence, "6");
}

TEST_F(PubSubTest, ReplayFromASequenceAndFromATime) {
  ScriptedTarget search;
  StartSidecar(absl::StrCat("services:\n", Service("search", {&search})));
  absl::Time fourth_at;
  for (int i = 1; i <= 5; ++i) {
    if (i == 4) fourth_at = clock_.Now();
    MustPublish(absl::StrCat("e", i));
    // Delivered before time moves on (an attempt in flight would time out on the fake clock).
    ASSERT_TRUE(AwaitCaughtUp("search"));
    clock_.Advance(absl::Minutes(1));
  }
  ASSERT_EQ(search.calls().size(), 5u);

  grpc::ClientContext context;
  v1::ReplaySubscriptionRequest request;
  request.set_topic("orders");
  request.set_service("search");
  request.set_sequence(3);
  v1::ReplaySubscriptionResponse response;
  ASSERT_TRUE(stub_->ReplaySubscription(&context, request, &response).ok());
  EXPECT_EQ(response.next_sequence(), 3u);
  EXPECT_EQ(response.first_available_sequence(), 1u);
  ASSERT_TRUE(search.AwaitCalls(8));

  grpc::ClientContext by_time;
  request.clear_sequence();
  request.mutable_time()->set_seconds(absl::ToUnixSeconds(fourth_at));
  ASSERT_TRUE(stub_->ReplaySubscription(&by_time, request, &response).ok());
  EXPECT_EQ(response.next_sequence(), 4u);
  ASSERT_TRUE(search.AwaitCalls(10));
  const std::vector<std::string> expected = {"e1", "e2", "e3", "e4", "e5",
                                             "e3", "e4", "e5", "e4", "e5"};
  std::vector<std::string> tags = Tags({&search});
  // Within one replay the parallel subscription may deliver out of order; compare as sets.
  std::sort(tags.begin() + 5, tags.begin() + 8);
  std::sort(tags.begin() + 8, tags.end());
  std::sort(tags.begin(), tags.begin() + 5);
  EXPECT_EQ(tags, expected);

  grpc::ClientContext unknown;
  request.set_service("nobody");
  EXPECT_EQ(stub_->ReplaySubscription(&unknown, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(PubSubTest, FullTopicRefusesPublishUntilTheSubscriberIsBackAndCatchesUp) {
  ScriptedTarget billing;
  StartSidecar("topics: [{name: orders, max_bytes: 2000}]\n");
  // billing registers with its subscription, then goes away: events accumulate for it.
  {
    ASSERT_TRUE(RegisterSubscriber("billing", billing.address(), "orders").ok());
    grpc::ClientContext deregister;
    v1::DeregisterServiceRequest down;
    down.set_name("billing");
    down.set_address(billing.address());
    v1::DeregisterServiceResponse downed;
    ASSERT_TRUE(stub_->DeregisterService(&deregister, down, &downed).ok());
  }
  int accepted = 0;
  grpc::Status refused;
  for (int i = 0; i < 100; ++i) {
    v1::PublishResponse response;
    refused = Publish("orders", absl::StrCat("e", i, std::string(200, '.')), &response);
    if (!refused.ok()) break;
    ++accepted;
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "topic orders is full"))
      << refused.error_message();
  EXPECT_GT(accepted, 3);
  EXPECT_EQ(FindSubscription(Topics(), "billing")->lag(), static_cast<uint64_t>(accepted));
  // Nothing was delivered while billing was away, nothing was dropped.
  EXPECT_EQ(billing.calls().size(), 0u);

  // billing comes back: everything owed arrives, and the topic has room again.
  {
    grpc::ClientContext context;
    v1::RegisterServiceRequest request;
    request.set_name("billing");
    request.set_address(billing.address());
    v1::RegisterServiceResponse response;
    ASSERT_TRUE(stub_->RegisterService(&context, request, &response).ok());
  }
  ASSERT_TRUE(
      AdvanceUntil([&] { return billing.calls().size() >= static_cast<size_t>(accepted); }));
  ASSERT_TRUE(AdvanceUntil([&] { return FindSubscription(Topics(), "billing")->lag() == 0; }));
  v1::PublishResponse response;
  EXPECT_TRUE(Publish("orders", "after", &response).ok());
}

TEST_F(PubSubTest, DeadLetteredEventIsRedrivenToThatSubscriberOnly) {
  ScriptedTarget billing, audit;
  const auto internal = ScriptedTarget::Answer(grpc::StatusCode::INTERNAL);  // not retryable
  billing.Script({internal});
  StartSidecar(
      absl::StrCat("services:\n", Service("billing", {&billing}), Service("audit", {&audit})));
  const v1::PublishResponse first = MustPublish("e1");
  ASSERT_TRUE(billing.AwaitCalls(1));
  ASSERT_TRUE(audit.AwaitCalls(1));
  v1::ListEventDeadLettersResponse listed;
  ASSERT_TRUE(AdvanceUntil([&] {
    grpc::ClientContext context;
    listed.Clear();
    stub_->ListEventDeadLetters(&context, v1::ListEventDeadLettersRequest(), &listed);
    return listed.dead_letters_size() == 1;
  }));
  const v1::EventDeadLetter& dead = listed.dead_letters(0);
  EXPECT_EQ(dead.subscriber(), "billing");
  EXPECT_EQ(dead.event().event_id(), first.event_id());
  EXPECT_EQ(dead.last_status_code(), static_cast<int>(grpc::StatusCode::INTERNAL));
  EXPECT_EQ(dead.attempts(), 1u);
  // The subscription moved on: the next event is delivered.
  MustPublish("e2");
  ASSERT_TRUE(billing.AwaitCalls(2));
  EXPECT_EQ(FindSubscription(Topics(), "billing")->dead_letters(), 1u);

  grpc::ClientContext context;
  v1::RedriveEventDeadLetterRequest redrive;
  redrive.set_topic("orders");
  redrive.set_subscriber("billing");
  redrive.set_sequence(1);
  v1::RedriveEventDeadLetterResponse redriven;
  ASSERT_TRUE(stub_->RedriveEventDeadLetter(&context, redrive, &redriven).ok());
  ASSERT_TRUE(billing.AwaitCalls(3));
  EXPECT_EQ(billing.calls()[2].cid, first.event_id());
  ASSERT_TRUE(AdvanceUntil([&] {
    grpc::ClientContext list;
    listed.Clear();
    stub_->ListEventDeadLetters(&list, v1::ListEventDeadLettersRequest(), &listed);
    return listed.dead_letters_size() == 0;
  }));
  EXPECT_EQ(audit.calls().size(), 2u);  // audit got each event once, nothing of the redrive

  grpc::ClientContext again;
  EXPECT_EQ(stub_->RedriveEventDeadLetter(&again, redrive, &redriven).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(PubSubTest, RepeatedIdempotencyKeyPublishesOnce) {
  ScriptedTarget billing;
  StartSidecar(absl::StrCat("services:\n", Service("billing", {&billing})));
  v1::PublishResponse first, second;
  ASSERT_TRUE(Publish("orders", "e1", &first, "order-17").ok());
  ASSERT_TRUE(Publish("orders", "e1-again", &second, "order-17").ok());
  EXPECT_FALSE(first.deduplicated());
  EXPECT_TRUE(second.deduplicated());
  EXPECT_EQ(second.event_id(), first.event_id());
  EXPECT_EQ(second.sequence(), first.sequence());
  MustPublish("e2");
  ASSERT_TRUE(billing.AwaitCalls(2));
  ASSERT_TRUE(AdvanceUntil([&] { return FindSubscription(Topics(), "billing")->lag() == 0; }));
  EXPECT_EQ(Tags({&billing}).size(), 2u);
  EXPECT_EQ(Topics().topics(0).last_sequence(), 2u);
}

TEST_F(PubSubTest, BadInputIsRefusedWithAClearErrorAndChangesNothing) {
  StartSidecar("");
  v1::PublishResponse response;
  grpc::Status status = Publish("bad topic!", "x", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(status.error_message(), "topic:")) << status.error_message();
  status = Publish("", "x", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext big_context;
  v1::PublishRequest big;
  big.set_topic("orders");
  big.set_payload(std::string(4097, 'x'));
  status = stub_->Publish(&big_context, big, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "max_payload_bytes"));
  EXPECT_EQ(Topics().topics_size(), 0);  // nothing was created

  ScriptedTarget billing;
  status = RegisterSubscriber("billing", billing.address(), "orders", "billing.v1.Billing/OnOrder");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "subscriptions[0].method: billing.v1.Billing/OnOrder is not a method of this "
            "instance: it serves callmesh.v1.Callback, not billing.v1.Billing");
  grpc::ClientContext list_context;
  v1::ListServicesResponse services;
  ASSERT_TRUE(stub_->ListServices(&list_context, v1::ListServicesRequest(), &services).ok());
  EXPECT_EQ(services.services_size(), 0);  // not registered either
  EXPECT_EQ(Topics().topics_size(), 0);
}

TEST_F(PubSubTest, SubscriptionsAndOwedEventsSurviveARestart) {
  ScriptedTarget billing;
  billing.Script({ScriptedTarget::Hold(), ScriptedTarget::Hold()});
  StartSidecar(absl::StrCat("services:\n", Service("billing", {&billing})));
  MustPublish("e1");
  MustPublish("e2");
  ASSERT_TRUE(billing.AwaitCalls(2));
  sidecar_->Stop();
  ASSERT_TRUE(sidecar_->Restart().ok());
  stub_ = v1::Sidecar::NewStub(sidecar_->Channel());
  ASSERT_TRUE(billing.AwaitCalls(4));
  ASSERT_TRUE(AdvanceUntil([&] { return FindSubscription(Topics(), "billing")->lag() == 0; }));
  std::vector<std::string> tags = Tags({&billing});
  std::sort(tags.begin() + 2, tags.end());
  EXPECT_EQ(tags[2], "e1");
  EXPECT_EQ(tags[3], "e2");
  EXPECT_EQ(MustPublish("e3").sequence(), 3u);
}

TEST_F(PubSubTest, UnsubscribeStopsDeliveryAndASubscriptionMadeAgainStartsAfresh) {
  ScriptedTarget billing;
  StartSidecar("");
  const auto subscribe = [&] { return RegisterSubscriber("billing", billing.address(), "orders"); };
  ASSERT_TRUE(subscribe().ok());
  EXPECT_EQ(MustPublish("e1").subscribers(), 1u);
  ASSERT_TRUE(billing.AwaitCalls(1));
  ASSERT_TRUE(AwaitCaughtUp("billing"));
  {
    grpc::ClientContext context;
    v1::UnsubscribeRequest request;
    request.set_topic("orders");
    request.set_service("billing");
    v1::UnsubscribeResponse response;
    ASSERT_TRUE(stub_->Unsubscribe(&context, request, &response).ok());
    grpc::ClientContext again;
    EXPECT_EQ(stub_->Unsubscribe(&again, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(MustPublish("e2").subscribers(), 0u);  // nobody subscribes: kept for nobody
  ASSERT_TRUE(subscribe().ok());
  EXPECT_EQ(MustPublish("e3").subscribers(), 1u);
  ASSERT_TRUE(billing.AwaitCalls(2));
  ASSERT_TRUE(AwaitCaughtUp("billing"));
  EXPECT_EQ(Tags({&billing}), (std::vector<std::string>{"e1", "e3"}));
}

}  // namespace
}  // namespace callmesh

// Chaos: Publish under load while callmeshd is killed with SIGKILL and restarted, in the style of
// kill9_test.cc. Publisher threads record a history (acknowledged with an event ID and sequence,
// or unknown because the crash cut the RPC); two subscribing services (billing, PARALLEL; shipping,
// ORDERED with two competing instances) record every delivery. After the faults, once every
// subscription has caught up, CheckPubSubHistory checks the history offline: no acknowledged event
// lost for any subscription, no phantom, one event ID per idempotency key, and for the ORDERED
// subscription first deliveries in topic order. The checker is a pure function with its own tests.
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/testing/scripted_target.h"
#include "tests/support/reconnecting_channel.h"
#include "tests/support/sidecar_process.h"

namespace callmesh::chaos {
namespace {

using ::callmesh::testing::ReconnectingChannel;
using ::callmesh::testing::ScriptedTarget;
using ::callmesh::testing::SidecarProcess;

// ---------------------------------------------------------------------------------------------
// The history and its checker (pure).

struct Published {
  std::string name;  // payload tag, unique per publish; also its idempotency key
  bool acked = false;
  std::string event_id;  // when acked
  uint64_t sequence = 0;
};

struct Received {
  std::string event_id;
  std::string name;
  uint64_t sequence = 0;
};

struct PubSubHistory {
  std::vector<Published> published;
  // Deliveries per subscribing service, in arrival order.
  std::map<std::string, std::vector<Received>> received;
  std::set<std::string> ordered;  // services whose subscription is ORDERED
};

std::vector<std::string> CheckPubSubHistory(const PubSubHistory& h) {
  std::vector<std::string> violations;
  std::map<std::string, const Published*> by_name;
  for (const Published& p : h.published) by_name[p.name] = &p;
  for (const auto& [service, deliveries] : h.received) {
    std::map<std::string, const Received*> first;  // event_id -> first delivery
    uint64_t last_first_sequence = 0;
    for (const Received& r : deliveries) {
      auto p = by_name.find(r.name);
      if (p == by_name.end()) {
        violations.push_back(
            absl::StrCat("phantom: ", service, " received ", r.name, " that was never published"));
        continue;
      }
      if (p->second->acked &&
          (p->second->event_id != r.event_id || p->second->sequence != r.sequence)) {
        violations.push_back(absl::StrCat(service, " received ", r.name, " as ", r.event_id, "/",
                                          r.sequence, " but it was acknowledged as ",
                                          p->second->event_id, "/", p->second->sequence));
      }
      auto [it, inserted] = first.emplace(r.event_id, &r);
      if (!inserted && it->second->name != r.name) {
        violations.push_back(
            absl::StrCat("event ", r.event_id, " delivered to ", service, " with two payloads"));
      }
      if (inserted && h.ordered.count(service) > 0) {
        if (r.sequence <= last_first_sequence) {
          violations.push_back(absl::StrCat("out of order: ", service, " first received sequence ",
                                            r.sequence, " after ", last_first_sequence));
        }
        last_first_sequence = r.sequence;
      }
    }
    for (const Published& p : h.published) {
      if (p.acked && first.count(p.event_id) == 0) {
        violations.push_back(absl::StrCat("lost: acknowledged event ", p.name, " (", p.event_id,
                                          ", sequence ", p.sequence, ") never reached ", service));
      }
    }
  }
  return violations;
}

TEST(CheckPubSubHistory, AcceptsRedeliveryAndUnknownPublishes) {
  PubSubHistory h;
  h.published = {{"a", true, "e1", 1}, {"b", false, "", 0}, {"c", true, "e3", 3}};
  h.ordered = {"shipping"};
  h.received["shipping"] = {{"e1", "a", 1}, {"e1", "a", 1}, {"e2", "b", 2}, {"e3", "c", 3}};
  h.received["billing"] = {{"e3", "c", 3}, {"e1", "a", 1}};
  EXPECT_TRUE(CheckPubSubHistory(h).empty());
}

TEST(CheckPubSubHistory, DetectsLostPhantomAndOutOfOrder) {
  PubSubHistory h;
  h.published = {{"a", true, "e1", 1}, {"c", true, "e3", 3}};
  h.ordered = {"shipping"};
  h.received["shipping"] = {{"e3", "c", 3}, {"e1", "a", 1}, {"e9", "zzz", 9}};
  h.received["billing"] = {{"e1", "a", 1}};
  const std::vector<std::string> violations = CheckPubSubHistory(h);
  ASSERT_EQ(violations.size(), 3u);
  EXPECT_EQ(violations[0], "lost: acknowledged event c (e3, sequence 3) never reached billing");
  EXPECT_EQ(violations[1], "out of order: shipping first received sequence 1 after 3");
  EXPECT_EQ(violations[2], "phantom: shipping received zzz that was never published");
}

// ---------------------------------------------------------------------------------------------
// The run.

void PublisherLoop(int id, const std::string& address, const std::atomic<bool>& stop,
                   const std::atomic<int>& generation, std::vector<Published>* history) {
  std::unique_ptr<v1::Sidecar::Stub> stub;
  int seen_generation = -1;
  for (int n = 0; !stop.load(); ++n) {
    if (generation.load() != seen_generation) {
      seen_generation = generation.load();
      stub = v1::Sidecar::NewStub(ReconnectingChannel(address));
    }
    Published p;
    p.name = absl::StrCat("p", id, "-", n);
    v1::Completion payload;
    payload.set_cid(p.name);
    v1::PublishRequest request;
    request.set_topic("orders");
    request.set_payload(payload.SerializeAsString());
    request.set_idempotency_key(p.name);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::PublishResponse response;
    const grpc::Status status = stub->Publish(&context, request, &response);
    if (status.ok()) {
      p.acked = true;
      p.event_id = response.event_id();
      p.sequence = response.sequence();
    }
    history->push_back(p);
    if (!status.ok()) absl::SleepFor(absl::Milliseconds(20));
  }
}

// Deliveries to the instances of one service, in arrival order across them.
std::vector<Received> ReceivedBy(const std::vector<const ScriptedTarget*>& targets) {
  std::vector<ScriptedTarget::Seen> all;
  for (const ScriptedTarget* target : targets) {
    for (const auto& seen : target->calls()) all.push_back(seen);
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.arrival < b.arrival; });
  std::vector<Received> received;
  {
    for (const auto& seen : all) {
      Received r;
      r.event_id = seen.cid;
      r.name = seen.request.cid();
      EXPECT_TRUE(absl::SimpleAtoi(seen.sequence, &r.sequence)) << seen.sequence;
      received.push_back(std::move(r));
    }
  }
  return received;
}

bool CaughtUp(v1::Sidecar::Stub* stub) {
  grpc::ClientContext context;
  v1::ListTopicsResponse topics;
  if (!stub->ListTopics(&context, v1::ListTopicsRequest(), &topics).ok()) return false;
  if (topics.topics_size() != 1 || topics.topics(0).subscriptions_size() != 2) return false;
  for (const auto& sub : topics.topics(0).subscriptions()) {
    if (sub.lag() != 0 || sub.in_flight() != 0) return false;
  }
  return true;
}

TEST(PubSubKill9Test, NoAcknowledgedEventIsLostForAnySubscription) {
  constexpr int kPublishers = 3;
  constexpr int kKills = 4;
  ScriptedTarget billing, shipping_a, shipping_b;
  const std::string method = "callmesh.v1.Callback/OnCompletion";
  auto started = SidecarProcess::Start(
      {.config_yaml = absl::StrCat(
           "default_retry: {max_attempts: 50, initial_backoff: 20ms, max_backoff: 200ms}\n"
           "services:\n"
           "  - name: billing\n    addresses: ['",
           billing.address(), "']\n", "    subscriptions: [{topic: orders, method: ", method,
           "}]\n", "  - name: shipping\n    addresses: ['", shipping_a.address(), "', '",
           shipping_b.address(), "']\n", "    subscriptions: [{topic: orders, method: ", method,
           ", mode: SUBSCRIPTION_MODE_ORDERED}]\n")});
  ASSERT_TRUE(started.ok()) << started.status();
  auto sidecar = std::make_unique<SidecarProcess>(*std::move(started));
  const std::string address = sidecar->address();

  std::atomic<bool> stop{false};
  std::atomic<int> generation{0};
  std::vector<std::vector<Published>> per_publisher(kPublishers);
  std::vector<std::thread> publishers;
  for (int i = 0; i < kPublishers; ++i) {
    publishers.emplace_back(PublisherLoop, i, address, std::cref(stop), std::cref(generation),
                            &per_publisher[i]);
  }
  std::mt19937 rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  bool restarted_ok = true;
  absl::SleepFor(absl::Milliseconds(500));
  for (int k = 0; k < kKills && restarted_ok; ++k) {
    absl::SleepFor(absl::Milliseconds(200 + rng() % 401));
    sidecar->Kill();
    absl::Status restarted = sidecar->Restart();
    EXPECT_TRUE(restarted.ok()) << restarted << "\n" << sidecar->process().output();
    restarted_ok = restarted.ok();
    generation.fetch_add(1);
  }
  absl::SleepFor(absl::Milliseconds(500));
  stop.store(true);
  for (std::thread& t : publishers) t.join();
  ASSERT_TRUE(restarted_ok);

  auto stub = v1::Sidecar::NewStub(ReconnectingChannel(address));
  ASSERT_TRUE(
      callmesh::testing::WaitUntil([&] { return CaughtUp(stub.get()); }, absl::Seconds(120)))
      << sidecar->process().output();

  PubSubHistory history;
  for (const auto& list : per_publisher) {
    history.published.insert(history.published.end(), list.begin(), list.end());
  }
  history.ordered = {"shipping"};
  history.received["billing"] = ReceivedBy({&billing});
  history.received["shipping"] = ReceivedBy({&shipping_a, &shipping_b});
  size_t acked = 0;
  for (const Published& p : history.published) acked += p.acked ? 1 : 0;
  std::printf("pubsub kill -9: %d kills, %zu publishes (%zu acknowledged), %zu + %zu deliveries\n",
              kKills, history.published.size(), acked, history.received["billing"].size(),
              history.received["shipping"].size());
  EXPECT_GT(acked, 100u);  // the run published something worth checking
  const std::vector<std::string> violations = CheckPubSubHistory(history);
  for (size_t i = 0; i < violations.size() && i < 20; ++i) ADD_FAILURE() << violations[i];
  EXPECT_TRUE(violations.empty()) << violations.size() << " violations";
}

}  // namespace
}  // namespace callmesh::chaos

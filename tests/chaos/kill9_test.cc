// Chaos: InvokeAsync under load while the sidecar is killed with SIGKILL and restarted, Jepsen
// style. Client threads record a history of submits (acknowledged with a CID, definitely rejected,
// or unknown because the crash cut the RPC); a callback service records every delivery; after the
// faults every acknowledged CID is polled. CheckHistory then checks the recorded history offline
// against the invariants of /work/shared/RELIABILITY.md (lost calls, phantom deliveries, changed
// outcomes, idempotency). CheckHistory is a pure function and has its own unit tests below.
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "callmesh/v1/callback.grpc.pb.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/reconnecting_channel.h"
#include "tests/support/sidecar_process.h"

namespace callmesh::chaos {
namespace {

using ::callmesh::testing::ReconnectingChannel;
using ::callmesh::testing::SidecarProcess;
using ::greeter::v1::HelloReply;
using ::greeter::v1::HelloRequest;

constexpr char kSource[] = "chaos";
constexpr char kCallbackName[] = "chaos-async-callback";

// ---------------------------------------------------------------------------------------------
// The history and its checker (pure: no I/O, no clocks).

enum class Outcome {
  kAcked,     // InvokeAsync returned OK with a CID.
  kRejected,  // A definite refusal (NOT_FOUND, INVALID_ARGUMENT): nothing may have been persisted.
  kUnknown,   // Cut or failed otherwise (crash mid-RPC): may or may not have been persisted.
};

struct Submit {
  std::string name;  // HelloRequest.name: unique per logical operation (shared by keyed retries)
  std::string key;   // idempotency key, empty if none
  Outcome outcome = Outcome::kUnknown;
  std::string cid;  // when acked
  int code = 0;     // gRPC status code of the submit
};

struct Delivery {
  std::string cid;
  int state = 0;
  std::string reply;
  int status_code = 0;
  uint32_t delivery_attempt = 0;
};

// What GetCall (include_payload) answered after the faults.
struct Poll {
  bool found = false;
  int state = 0;
  std::string reply;
  int status_code = 0;
  std::string name;  // HelloRequest.name parsed from the envelope payload
};

struct History {
  std::vector<Submit> submits;
  std::vector<Delivery> deliveries;
  std::map<std::string, Poll> polls;  // every acknowledged CID and every delivered CID
};

std::string StateName(int state) { return v1::CallState_Name(static_cast<v1::CallState>(state)); }

// Returns one line per violation; empty = the history is correct.
std::vector<std::string> CheckHistory(const History& h) {
  std::vector<std::string> violations;
  std::map<std::string, std::string> acked;  // CID -> name
  std::set<std::string> unknown_names, acked_names;
  std::map<std::string, std::set<std::string>> cids_by_key;
  for (const Submit& s : h.submits) {
    if (s.outcome == Outcome::kAcked) {
      if (s.cid.empty()) violations.push_back(absl::StrCat("acked submit ", s.name, " has no CID"));
      auto [it, inserted] = acked.emplace(s.cid, s.name);
      if (!inserted && it->second != s.name) {
        violations.push_back(absl::StrCat(
            "CID ", s.cid, " acknowledged for two operations: ", it->second, " and ", s.name));
      }
      acked_names.insert(s.name);
      if (!s.key.empty()) cids_by_key[s.key].insert(s.cid);
    } else if (s.outcome == Outcome::kUnknown) {
      unknown_names.insert(s.name);
    }
  }
  std::map<std::string, std::vector<const Delivery*>> deliveries;
  for (const Delivery& d : h.deliveries) deliveries[d.cid].push_back(&d);

  // 1. No lost call: every acknowledged CID is terminal, pollable, and ran what was submitted.
  for (const auto& [cid, name] : acked) {
    auto poll = h.polls.find(cid);
    if (poll == h.polls.end() || !poll->second.found) {
      violations.push_back(
          absl::StrCat("lost call: acknowledged CID ", cid, " (", name, ") is not pollable"));
      continue;
    }
    const Poll& p = poll->second;
    if (p.state != v1::CALL_STATE_SUCCEEDED && p.state != v1::CALL_STATE_FAILED) {
      violations.push_back(absl::StrCat("lost call: acknowledged CID ", cid, " (", name,
                                        ") ended in state ", StateName(p.state),
                                        ", expected SUCCEEDED or FAILED"));
    }
    if (p.name != name) {
      violations.push_back(absl::StrCat("CID ", cid, " was acknowledged for ", name,
                                        " but its envelope carries ", p.name));
    }
    if (p.state == v1::CALL_STATE_SUCCEEDED) {
      HelloReply reply;
      if (!reply.ParseFromString(p.reply) || reply.cid() != cid ||
          reply.message() != absl::StrCat("Hello, ", name, "!")) {
        violations.push_back(
            absl::StrCat("CID ", cid, " succeeded with a wrong reply: ", reply.ShortDebugString()));
      }
    }
    // 2. Delivered at least once.
    if (deliveries.find(cid) == deliveries.end()) {
      violations.push_back(absl::StrCat("undelivered: acknowledged CID ", cid, " (", name, ", ",
                                        StateName(p.state), ") never reached the callback"));
    }
  }

  for (const auto& [cid, list] : deliveries) {
    // 3. No phantom: a delivered CID was acknowledged, or belongs to a submit of unknown outcome.
    if (acked.count(cid) == 0) {
      auto poll = h.polls.find(cid);
      if (poll == h.polls.end() || !poll->second.found) {
        violations.push_back(absl::StrCat("phantom: delivered CID ", cid,
                                          " was never acknowledged and is unknown to the sidecar"));
        continue;
      }
      const std::string& name = poll->second.name;
      if (unknown_names.count(name) == 0) {
        violations.push_back(absl::StrCat("phantom: delivered CID ", cid, " (", name,
                                          ") matches no submit of unknown outcome"));
      } else if (acked_names.count(name) > 0) {
        violations.push_back(absl::StrCat("double execution: ", name, " was persisted as ", cid,
                                          " and acknowledged under another CID"));
      }
    }
    // 4. Duplicates only as redeliveries of the same outcome.
    const Delivery& first = *list.front();
    for (const Delivery* d : list) {
      if (d->state != first.state || d->reply != first.reply ||
          d->status_code != first.status_code) {
        violations.push_back(absl::StrCat(
            "changed outcome: CID ", cid, " delivered as ", StateName(first.state), "/",
            first.status_code, " (attempt ", first.delivery_attempt, ") and as ",
            StateName(d->state), "/", d->status_code, " (attempt ", d->delivery_attempt, ")"));
        break;
      }
    }
    // 5. One outcome: the delivered outcome is the persisted one.
    auto poll = h.polls.find(cid);
    if (poll != h.polls.end() && poll->second.found) {
      const Poll& p = poll->second;
      if (p.state != first.state || p.reply != first.reply || p.status_code != first.status_code) {
        violations.push_back(absl::StrCat(
            "changed outcome: CID ", cid, " delivered as ", StateName(first.state), "/",
            first.status_code, " but GetCall says ", StateName(p.state), "/", p.status_code));
      }
    }
  }

  // 6. Same idempotency key => same CID.
  for (const auto& [key, cids] : cids_by_key) {
    if (cids.size() > 1) {
      violations.push_back(absl::StrCat("idempotency key ", key, " acknowledged with ", cids.size(),
                                        " CIDs: ", absl::StrJoin(cids, ", ")));
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------------------------
// Unit tests of the checker on hand-made histories.

std::string Reply(const std::string& cid, const std::string& name) {
  HelloReply reply;
  reply.set_message(absl::StrCat("Hello, ", name, "!"));
  reply.set_cid(cid);
  return reply.SerializeAsString();
}

History GoodHistory() {
  History h;
  h.submits.push_back({"a", "", Outcome::kAcked, "cid-a", 0});
  h.submits.push_back({"b", "k", Outcome::kUnknown, "", 14});
  h.submits.push_back({"b", "k", Outcome::kAcked, "cid-b", 0});
  h.submits.push_back({"c", "", Outcome::kUnknown, "", 14});  // persisted, ack lost
  h.submits.push_back({"d", "", Outcome::kRejected, "", 5});
  h.deliveries.push_back({"cid-a", v1::CALL_STATE_SUCCEEDED, Reply("cid-a", "a"), 0, 1});
  h.deliveries.push_back({"cid-a", v1::CALL_STATE_SUCCEEDED, Reply("cid-a", "a"), 0, 2});
  h.deliveries.push_back({"cid-b", v1::CALL_STATE_FAILED, "", 3, 1});
  h.deliveries.push_back({"cid-c", v1::CALL_STATE_SUCCEEDED, Reply("cid-c", "c"), 0, 1});
  h.polls["cid-a"] = {true, v1::CALL_STATE_SUCCEEDED, Reply("cid-a", "a"), 0, "a"};
  h.polls["cid-b"] = {true, v1::CALL_STATE_FAILED, "", 3, "b"};
  h.polls["cid-c"] = {true, v1::CALL_STATE_SUCCEEDED, Reply("cid-c", "c"), 0, "c"};
  return h;
}

TEST(CheckHistory, AcceptsCorrectHistoryWithRedeliveryAndUnknownSubmit) {
  EXPECT_TRUE(CheckHistory(GoodHistory()).empty())
      << absl::StrJoin(CheckHistory(GoodHistory()), "\n");
}

TEST(CheckHistory, DetectsLostCall) {
  History h = GoodHistory();
  h.polls.erase("cid-a");  // acknowledged, not pollable
  std::vector<std::string> v = CheckHistory(h);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(absl::StrContains(v[0], "lost call")) << v[0];
  h = GoodHistory();
  h.polls["cid-b"].state = v1::CALL_STATE_RUNNING;  // never finished
  v = CheckHistory(h);
  ASSERT_FALSE(v.empty());
  EXPECT_TRUE(absl::StrContains(absl::StrJoin(v, "\n"), "lost call"));
  h = GoodHistory();
  h.deliveries.erase(h.deliveries.begin() + 2);  // cid-b never delivered
  v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "undelivered")) << v[0];
}

TEST(CheckHistory, DetectsPhantomDelivery) {
  History h = GoodHistory();
  h.deliveries.push_back({"cid-x", v1::CALL_STATE_SUCCEEDED, Reply("cid-x", "x"), 0, 1});
  std::vector<std::string> v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "phantom")) << v[0];
  // Known to the sidecar, but for a definitely rejected submit.
  h.polls["cid-x"] = {true, v1::CALL_STATE_SUCCEEDED, Reply("cid-x", "d"), 0, "d"};
  h.deliveries.back().reply = Reply("cid-x", "d");
  v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "phantom")) << v[0];
}

TEST(CheckHistory, DetectsChangedOutcomeAndIdempotencyViolation) {
  History h = GoodHistory();
  h.deliveries.push_back({"cid-a", v1::CALL_STATE_FAILED, "", 14, 3});
  std::vector<std::string> v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "changed outcome")) << v[0];
  h = GoodHistory();
  h.polls["cid-b"].status_code = 14;  // persisted differs from delivered
  v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "changed outcome")) << v[0];
  h = GoodHistory();
  h.submits.push_back({"b", "k", Outcome::kAcked, "cid-b2", 0});
  h.polls["cid-b2"] = {true, v1::CALL_STATE_FAILED, "", 3, "b"};
  h.deliveries.push_back({"cid-b2", v1::CALL_STATE_FAILED, "", 3, 1});
  v = CheckHistory(h);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v[0], "idempotency key k")) << v[0];
}

// ---------------------------------------------------------------------------------------------
// The chaos run.

class RecordingCallback final : public v1::Callback::Service {
 public:
  grpc::Status OnCompletion(grpc::ServerContext*, const v1::Completion* c,
                            v1::OnCompletionResponse*) override {
    absl::MutexLock lock(&mu_);
    received_.push_back(
        {c->cid(), c->state(), c->reply(), c->status_code(), c->delivery_attempt()});
    cids_.insert(c->cid());
    return grpc::Status::OK;
  }
  std::vector<Delivery> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }
  bool HasAll(const std::set<std::string>& cids) {
    absl::MutexLock lock(&mu_);
    for (const std::string& cid : cids) {
      if (cids_.count(cid) == 0) return false;
    }
    return true;
  }

 private:
  absl::Mutex mu_;
  std::vector<Delivery> received_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> cids_ ABSL_GUARDED_BY(mu_);
};

// Submits InvokeAsync calls until `stop`, recording each outcome.
void ClientLoop(int id, const std::string& address, const std::atomic<bool>& stop,
                const std::atomic<int>& generation, std::vector<Submit>* history) {
  std::mt19937 rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())) + id * 7919);
  std::unique_ptr<v1::Sidecar::Stub> stub;
  int seen_generation = -1;
  for (int n = 0; !stop.load(); ++n) {
    if (generation.load() != seen_generation) {  // a fresh channel after each restart
      seen_generation = generation.load();
      stub = v1::Sidecar::NewStub(ReconnectingChannel(address));
    }
    HelloRequest hello;
    hello.set_name(absl::StrCat("c", id, "-", n));
    hello.set_delay_ms(rng() % 51);
    if (rng() % 10 == 0) hello.set_fail_code(3);  // INVALID_ARGUMENT: FAILED, not retried
    const bool keyed = rng() % 5 == 0;
    const std::string key = keyed ? absl::StrCat("key-", hello.name()) : "";
    // A keyed operation is submitted twice, like a client retrying.
    for (int repeat = 0; repeat < (keyed ? 2 : 1); ++repeat) {
      v1::InvokeAsyncRequest request = testing::SayHelloAsync(hello);
      request.set_source(kSource);
      request.set_idempotency_key(key);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::InvokeAsyncResponse response;
      const grpc::Status status = stub->InvokeAsync(&context, request, &response);
      Submit submit{hello.name(), key, Outcome::kUnknown, "", status.error_code()};
      if (status.ok()) {
        submit.outcome = Outcome::kAcked;
        submit.cid = response.cid();
      } else if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
                 status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        submit.outcome = Outcome::kRejected;
      }
      history->push_back(std::move(submit));
      absl::SleepFor(absl::Milliseconds(status.ok() ? 8 + rng() % 10 : 20));
    }
  }
}

// Waits (up to 10 s) until the restarted sidecar routes to the greeter again, so up time is load.
void WaitGreeterRegistered(const std::string& address) {
  auto stub = v1::Sidecar::NewStub(ReconnectingChannel(address));
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (absl::Now() < until) {
    v1::ListServicesResponse services;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    if (stub->ListServices(&context, {}, &services).ok()) {
      for (const v1::ServiceInfo& service : services.services()) {
        if (service.name() == "greeter" && service.instances_size() > 0) return;
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

bool Poll1(v1::Sidecar::Stub& stub, const std::string& cid, Poll* poll) {
  v1::GetCallRequest request;
  request.set_cid(cid);
  request.set_include_payload(true);
  v1::Call call;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status status = stub.GetCall(&context, request, &call);
  if (!status.ok()) {
    poll->found = false;
    return status.error_code() == grpc::StatusCode::NOT_FOUND;
  }
  poll->found = true;
  poll->state = call.state();
  poll->reply = call.completion().reply();
  poll->status_code = call.completion().status_code();
  HelloRequest hello;
  if (hello.ParseFromString(call.envelope().payload())) poll->name = hello.name();
  return true;
}

TEST(Kill9Test, AcknowledgedCallsSurviveRepeatedSigkillUnderLoad) {
  constexpr int kClients = 4;
  constexpr int kKills = 3;
  std::unique_ptr<SidecarProcess> sidecar;  // declared first: destroyed after the hosts

  // The callback service is known to the sidecar from its config, so the convention callback
  // resolves at once after each restart (the registry of run-time registrations starts empty).
  RecordingCallback callback;
  ServiceHost callback_host({.name = kCallbackName, .sidecar = ""});
  callback_host.AddService(&callback);
  ASSERT_TRUE(callback_host.Start().ok());

  auto started = SidecarProcess::Start(
      {.config_yaml = absl::StrCat(
           "default_retry: {max_attempts: 10, initial_backoff: 20ms, max_backoff: 200ms}\n"
           "callback_retry: {max_attempts: 50, initial_backoff: 20ms, max_backoff: 200ms}\n"
           "services:\n"
           "  - name: ",
           kCallbackName,
           "\n"
           "    addresses: [",
           callback_host.address(), "]\n")});
  ASSERT_TRUE(started.ok()) << started.status();
  sidecar = std::make_unique<SidecarProcess>(*std::move(started));
  const std::string address = sidecar->address();

  greeter::GreeterService greeter;
  ServiceHost greeter_host({.name = "greeter", .sidecar = address});
  greeter_host.AddService(&greeter);
  ASSERT_TRUE(greeter_host.Start().ok());

  std::atomic<bool> stop{false};
  std::atomic<int> generation{0};
  std::vector<std::vector<Submit>> per_client(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(ClientLoop, i, address, std::cref(stop), std::cref(generation),
                         &per_client[i]);
  }

  std::vector<std::string> logs;  // output of each killed callmeshd
  std::mt19937 rng(static_cast<uint32_t>(absl::ToUnixNanos(absl::Now())));
  int kills = 0;
  bool restarted_ok = true;
  absl::SleepFor(absl::Milliseconds(1000));
  for (int k = 0; k < kKills && restarted_ok; ++k) {
    absl::SleepFor(absl::Milliseconds(300 + rng() % 501));
    logs.push_back(sidecar->process().output());
    sidecar->Kill();
    ++kills;
    absl::Status restarted = sidecar->Restart();
    EXPECT_TRUE(restarted.ok()) << restarted << "\n" << sidecar->process().output();
    restarted_ok = restarted.ok();
    generation.fetch_add(1);
    if (restarted_ok) WaitGreeterRegistered(address);
  }
  absl::SleepFor(absl::Milliseconds(1500));  // up time after the last restart
  stop.store(true);
  for (std::thread& t : clients) t.join();
  ASSERT_TRUE(restarted_ok);

  History history;
  for (auto& list : per_client) {
    history.submits.insert(history.submits.end(), list.begin(), list.end());
  }
  std::set<std::string> acked;
  int unknown = 0, rejected = 0;
  for (const Submit& s : history.submits) {
    if (s.outcome == Outcome::kAcked) acked.insert(s.cid);
    if (s.outcome == Outcome::kUnknown) ++unknown;
    if (s.outcome == Outcome::kRejected) ++rejected;
  }

  // Wait for every acknowledged CID to finish, then poll it.
  auto stub = v1::Sidecar::NewStub(ReconnectingChannel(address));
  const absl::Time budget = absl::Now() + absl::Seconds(120);
  for (const std::string& cid : acked) {
    const absl::Duration left = std::max(absl::ZeroDuration(), budget - absl::Now());
    v1::WaitCallRequest wait;
    wait.set_cid(cid);
    wait.mutable_timeout()->set_seconds(absl::ToInt64Seconds(std::min(left, absl::Seconds(60))));
    v1::Call call;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(65));
    (void)stub->WaitCall(&context, wait, &call);
    Poll poll;
    EXPECT_TRUE(Poll1(*stub, cid, &poll)) << "GetCall " << cid << " failed";
    history.polls[cid] = poll;
  }
  // Wait until every acknowledged CID reached the callback.
  const absl::Time delivery_budget = absl::Now() + absl::Seconds(60);
  while (!callback.HasAll(acked) && absl::Now() < delivery_budget) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  absl::SleepFor(absl::Milliseconds(300));  // let late redeliveries land too
  history.deliveries = callback.received();
  std::set<std::string> delivered;
  for (const Delivery& d : history.deliveries) delivered.insert(d.cid);
  for (const std::string& cid : delivered) {
    if (history.polls.count(cid) == 0) {
      Poll poll;
      EXPECT_TRUE(Poll1(*stub, cid, &poll)) << "GetCall " << cid << " failed";
      history.polls[cid] = poll;
    }
  }

  const std::vector<std::string> violations = CheckHistory(history);
  int succeeded = 0, failed = 0;
  for (const std::string& cid : acked) {
    const int state = history.polls[cid].state;
    if (state == v1::CALL_STATE_SUCCEEDED) ++succeeded;
    if (state == v1::CALL_STATE_FAILED) ++failed;
  }
  const size_t redeliveries = history.deliveries.size() - delivered.size();
  std::printf(
      "kill9 summary: submits=%zu acknowledged=%zu (succeeded=%d failed=%d) unknown=%d "
      "rejected=%d deliveries=%zu delivered_cids=%zu redeliveries=%zu unacked_delivered=%zu "
      "kills=%d violations=%zu\n",
      history.submits.size(), acked.size(), succeeded, failed, unknown, rejected,
      history.deliveries.size(), delivered.size(), redeliveries,
      delivered.size() - std::count_if(delivered.begin(), delivered.end(),
                                       [&](const std::string& c) { return acked.count(c); }),
      kills, violations.size());
  EXPECT_GE(acked.size(), 100u) << "too little load to mean anything";
  EXPECT_EQ(kills, kKills);

  if (!violations.empty()) {
    logs.push_back(sidecar->process().output());
    std::string details;
    for (size_t i = 0; i < violations.size() && i < 30; ++i) {
      details += violations[i] + "\n";
      // The callmeshd log lines mentioning the CID, across every run.
      for (absl::string_view word : absl::StrSplit(violations[i], ' ')) {
        if (word.size() != 36) continue;
        for (size_t run = 0; run < logs.size(); ++run) {
          for (absl::string_view line : absl::StrSplit(logs[run], '\n')) {
            if (absl::StrContains(line, word))
              absl::StrAppend(&details, "  [run ", run, "] ", line, "\n");
          }
        }
      }
    }
    ADD_FAILURE() << violations.size() << " violations:\n" << details;
    std::string tail =
        logs.back().substr(logs.back().size() > 4000 ? logs.back().size() - 4000 : 0);
    std::printf("last callmeshd log tail:\n%s\n", tail.c_str());
  }
}

}  // namespace
}  // namespace callmesh::chaos

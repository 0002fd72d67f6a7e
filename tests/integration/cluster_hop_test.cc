// Cluster mode on loopback: one nats-server with JetStream, two real callmeshd ("a" and "b") with
// peer listeners, the greeter registered with b only. What a call keeps and what the peer
// listener refuses; the network-namespace tests of tests/cluster/ cover hosts and faults.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/metadata.h"
#include "services/greeter/greeter.pb.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using testing::Process;
using testing::SidecarProcess;
using testing::WaitUntil;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

struct Cluster {
  std::optional<Process> nats;
  std::string nats_url;
  std::string peer_a, peer_b;
  std::optional<SidecarProcess> a, b;
};

// A sidecar's config in cluster mode; `cluster_extra` is appended to its cluster block.
std::string ClusterYaml(const std::string& id, const std::string& nats_url, const std::string& peer,
                        const std::string& cluster_extra = "") {
  return absl::StrCat("name: app-", id, "\ncluster:\n  nats_servers: [", nats_url,
                      "]\n  sidecar_id: ", id, "\n  advertise_address: ", peer,
                      "\n  heartbeat_interval: 200ms\n  instance_ttl: 1s\n", cluster_extra);
}

// nats-server (with `nats_args` added) and the sidecars a and b (with `cluster_extra`).
absl::StatusOr<Cluster> StartCluster(const std::vector<std::string>& nats_args = {},
                                     const std::string& cluster_extra = "") {
  Cluster cluster;
  const int port = testing::FreeLoopbackPort();
  std::vector<std::string> args = {
      "-a", "127.0.0.1", "-p", absl::StrCat(port), "-js", "-sd", testing::NewTempDir("nats")};
  args.insert(args.end(), nats_args.begin(), nats_args.end());
  absl::StatusOr<Process> nats = Process::Start("/usr/sbin/nats-server", args, "nats-server");
  if (!nats.ok()) return nats.status();
  cluster.nats.emplace(*std::move(nats));
  cluster.nats_url = absl::StrCat("nats://127.0.0.1:", port);
  cluster.peer_a = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
  cluster.peer_b = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
  absl::StatusOr<SidecarProcess> a = SidecarProcess::Start(
      {.config_yaml = ClusterYaml("a", cluster.nats_url, cluster.peer_a, cluster_extra)});
  if (!a.ok()) return a.status();
  cluster.a.emplace(*std::move(a));
  absl::StatusOr<SidecarProcess> b = SidecarProcess::Start(
      {.config_yaml = ClusterYaml("b", cluster.nats_url, cluster.peer_b, cluster_extra)});
  if (!b.ok()) return b.status();
  cluster.b.emplace(*std::move(b));
  return cluster;
}

// The hosts the sidecar at `stub` lists for `service` ("" entries for none).
std::vector<std::string> HostsOf(v1::Sidecar::Stub* stub, const std::string& service) {
  v1::ListServicesResponse response;
  grpc::ClientContext context;
  std::vector<std::string> hosts;
  if (!stub->ListServices(&context, v1::ListServicesRequest(), &response).ok()) return hosts;
  for (const v1::ServiceInfo& info : response.services()) {
    if (info.name() != service) continue;
    for (const v1::ServiceInstance& instance : info.instances()) hosts.push_back(instance.host());
  }
  return hosts;
}

// A call straight to a peer listener, as another sidecar would make it.
grpc::Status CallPeer(const std::string& peer, const std::string& target, const std::string& cid,
                      ::greeter::v1::HelloReply* reply,
                      const std::map<std::string, std::string>& extra_metadata = {}) {
  grpc::GenericStub stub(grpc::CreateChannel(peer, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  for (const auto& [key, value] : extra_metadata) context.AddMetadata(key, value);
  if (!target.empty()) context.AddMetadata(kTargetMetadata, target);
  if (!cid.empty()) context.AddMetadata(kCidMetadata, cid);
  context.AddMetadata(kSourceMetadata, "checkout");
  context.AddMetadata(kAttemptMetadata, "3");
  ::greeter::v1::HelloRequest hello;
  hello.set_name("peer");
  grpc::ByteBuffer request = StringToByteBuffer(hello.SerializeAsString());
  grpc::ByteBuffer response;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&context, absl::StrCat("/", kSayHello), grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (status.ok()) reply->ParseFromString(ByteBufferToString(response));
  return status;
}

// Every test on its own cluster: nats-server and the sidecars a and b.
class ClusterHop : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Cluster> started = StartCluster();
    ASSERT_TRUE(started.ok()) << started.status();
    cluster.emplace(*std::move(started));
  }
  std::optional<Cluster> cluster;
};

// Sidecar.Invoke of the greeter's SayHello for `name`, answered after `delay_ms`.
v1::InvokeRequest SayHello(const std::string& name, uint32_t delay_ms = 0) {
  v1::InvokeRequest invoke;
  invoke.set_service("greeter");
  invoke.set_method(kSayHello);
  ::greeter::v1::HelloRequest hello;
  hello.set_name(name);
  hello.set_delay_ms(delay_ms);
  invoke.set_payload(hello.SerializeAsString());
  return invoke;
}

// The greeter served and registered with `home`; nullptr once `seen_from` does not list it on
// `host` in time (a test failure says which).
std::unique_ptr<ServiceHost> GreeterOn(SidecarProcess& home, const std::string& host,
                                       v1::Sidecar::Stub* seen_from,
                                       greeter::GreeterService* greeter) {
  auto served = testing::HostService("greeter", home.address(), greeter);
  if (served == nullptr) return nullptr;
  if (!WaitUntil([&] { return HostsOf(seen_from, "greeter") == std::vector<std::string>{host}; })) {
    ADD_FAILURE() << "the other sidecar does not list the greeter on " << host;
    return nullptr;
  }
  return served;
}

TEST_F(ClusterHop, CallToAServiceOnAnotherSidecarKeepsCidSourceAndAttempt) {
  greeter::GreeterService greeter;
  auto a = v1::Sidecar::NewStub(cluster->a->Channel());
  auto host = GreeterOn(*cluster->b, "b", a.get(), &greeter);
  ASSERT_NE(host, nullptr);

  v1::InvokeRequest invoke = SayHello("across");
  invoke.set_source("checkout");
  v1::InvokeResponse response;
  grpc::ClientContext context;
  grpc::Status status = a->Invoke(&context, invoke, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ::greeter::v1::HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(response.payload()));
  EXPECT_EQ(reply.message(), "Hello, across!");
  EXPECT_EQ(reply.cid(), response.cid());
  EXPECT_EQ(reply.source(), "checkout");
  EXPECT_EQ(reply.attempt(), 1u);
}

TEST_F(ClusterHop, DeadlineAndCancellationCrossTheHop) {
  greeter::GreeterService greeter;
  auto a = v1::Sidecar::NewStub(cluster->a->Channel());
  auto host = GreeterOn(*cluster->b, "b", a.get(), &greeter);
  ASSERT_NE(host, nullptr);
  const v1::InvokeRequest invoke = SayHello("slow", 20000);
  v1::InvokeResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  const grpc::Status status = a->Invoke(&context, invoke, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  // The greeter two hops away saw its call end (it polls for cancellation while it waits).
  EXPECT_TRUE(WaitUntil([&] { return greeter.cancelled_calls() == 1; }))
      << "the greeter's call was not cancelled; started " << greeter.started_calls();
}

TEST_F(ClusterHop, PeerListenerForwardsOnlyToItsOwnInstancesAndChecksWhatItIsSent) {
  greeter::GreeterService greeter;
  auto b = v1::Sidecar::NewStub(cluster->b->Channel());
  auto host = GreeterOn(*cluster->a, "a", b.get(), &greeter);
  ASSERT_NE(host, nullptr);

  ::greeter::v1::HelloReply reply;
  // a's peer listener: its own instance, with the context as sent.
  grpc::Status status = CallPeer(cluster->peer_a, "greeter", "cid-from-elsewhere", &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply.cid(), "cid-from-elsewhere");
  EXPECT_EQ(reply.source(), "checkout");
  EXPECT_EQ(reply.attempt(), 3u);
  // b knows greeter only on a: a forwarded call never travels on (no loops between sidecars).
  status = CallPeer(cluster->peer_b, "greeter", "cid-1", &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "no instance on this host (sidecar \"b\")"))
      << status.error_message();
  status = CallPeer(cluster->peer_a, "greeter", "", &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "callmesh-cid")) << status.error_message();
  status = CallPeer(cluster->peer_a, "", "cid-2", &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << status.error_message();
}

TEST_F(ClusterHop, SidecarThatStopsLeavesAtOnceAndOneKilledIsDroppedAfterItsTtl) {
  greeter::GreeterService greeter;
  auto a = v1::Sidecar::NewStub(cluster->a->Channel());
  auto host = GreeterOn(*cluster->b, "b", a.get(), &greeter);
  ASSERT_NE(host, nullptr);
  cluster->b->Kill();
  ASSERT_TRUE(WaitUntil([&] { return HostsOf(a.get(), "greeter").empty(); }))
      << "a still routes to b after b was killed";
  ASSERT_TRUE(cluster->b->Restart().ok());
  ASSERT_TRUE(WaitUntil([&] {
    return HostsOf(a.get(), "greeter") == std::vector<std::string>{"b"};
  })) << "b's greeter did not come back (it re-registers with the restarted sidecar)";
  host.reset();
  absl::StatusOr<int> stopped = cluster->b->Stop();
  ASSERT_TRUE(stopped.ok());
  EXPECT_TRUE(WaitUntil([&] { return HostsOf(a.get(), "greeter").empty(); }));
}

// The subscriptions of `topic` the sidecar at `stub` holds, by service.
std::vector<std::string> SubscribersOf(v1::Sidecar::Stub* stub, const std::string& topic) {
  v1::ListTopicsResponse response;
  grpc::ClientContext context;
  std::vector<std::string> services;
  if (!stub->ListTopics(&context, v1::ListTopicsRequest(), &response).ok()) return services;
  for (const v1::TopicInfo& info : response.topics()) {
    if (info.name() != topic) continue;
    for (const v1::SubscriptionInfo& sub : info.subscriptions()) services.push_back(sub.service());
  }
  return services;
}

v1::PublishResponse PublishHello(v1::Sidecar::Stub* stub, const std::string& name) {
  ::greeter::v1::HelloRequest hello;
  hello.set_name(name);
  v1::PublishRequest publish;
  publish.set_topic("greetings");
  publish.set_payload(hello.SerializeAsString());
  v1::PublishResponse response;
  grpc::ClientContext context;
  const grpc::Status status = stub->Publish(&context, publish, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response;
}

size_t Count(const std::vector<std::string>& cids, const std::string& cid) {
  return std::count(cids.begin(), cids.end(), cid);
}

TEST_F(ClusterHop, PubSubSubscriptionIsClusterWideAndEachEventReachesTheServiceOnce) {
  // The subscriber runs on b's host and subscribes through b.
  greeter::GreeterService greeter;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&greeter);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto a = v1::Sidecar::NewStub(cluster->a->Channel());
  auto b = v1::Sidecar::NewStub(cluster->b->Channel());
  v1::RegisterServiceRequest registration;
  registration.set_name("greeter");
  registration.set_address(absl::StrCat("127.0.0.1:", port));
  v1::Subscription* subscription = registration.add_subscriptions();
  subscription->set_topic("greetings");
  subscription->set_method(kSayHello);
  {
    v1::RegisterServiceResponse response;
    grpc::ClientContext context;
    const grpc::Status status = b->RegisterService(&context, registration, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_TRUE(WaitUntil([&] {
    return SubscribersOf(a.get(), "greetings") == std::vector<std::string>{"greeter"} &&
           HostsOf(a.get(), "greeter") == std::vector<std::string>{"b"};
  })) << "a did not learn b's subscription";

  // Published through a: a's fan-out delivers it to the greeter on b's host. Through b: b's.
  const v1::PublishResponse through_a = PublishHello(a.get(), "via-a");
  const v1::PublishResponse through_b = PublishHello(b.get(), "via-b");
  // Each sidecar counts the subscription it learnt or made.
  EXPECT_EQ(through_a.subscribers(), 1u);
  EXPECT_EQ(through_b.subscribers(), 1u);
  const std::string via_a = through_a.event_id();
  const std::string via_b = through_b.event_id();
  ASSERT_TRUE(WaitUntil([&] {
    const std::vector<std::string> seen = greeter.seen_cids();
    return Count(seen, via_a) == 1 && Count(seen, via_b) == 1;
  })) << "seen: "
      << greeter.seen_cids().size() << " deliveries";

  // Removed through a: gone everywhere, and nothing more is delivered.
  {
    v1::UnsubscribeRequest unsubscribe;
    unsubscribe.set_topic("greetings");
    unsubscribe.set_service("greeter");
    v1::UnsubscribeResponse response;
    grpc::ClientContext context;
    const grpc::Status status = a->Unsubscribe(&context, unsubscribe, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }
  ASSERT_TRUE(WaitUntil([&] { return SubscribersOf(b.get(), "greetings").empty(); }))
      << "b kept the subscription removed through a";
  // Published after the removal, on either side: no subscription holds these events, so none
  // is delivered (the publish answer counts the subscriptions that will receive it).
  EXPECT_EQ(PublishHello(b.get(), "after").subscribers(), 0u);
  EXPECT_EQ(PublishHello(a.get(), "after").subscribers(), 0u);
  server->Shutdown();
}

// A greeter that keeps the metadata of the last call it answered.
class MetadataGreeter final : public ::greeter::v1::Greeter::Service {
 public:
  grpc::Status SayHello(grpc::ServerContext* context, const ::greeter::v1::HelloRequest*,
                        ::greeter::v1::HelloReply* reply) override {
    absl::MutexLock lock(&mu_);
    seen_.clear();
    for (const auto& [key, value] : context->client_metadata()) {
      seen_[std::string(key.data(), key.size())] = std::string(value.data(), value.size());
    }
    reply->set_message("seen");
    return grpc::Status::OK;
  }
  std::map<std::string, std::string> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> seen_ ABSL_GUARDED_BY(mu_);
};

// What a forwarding sidecar adds for an event delivery (topic, sequence) and the application's
// headers reach the target through the peer listener; the caller's own claims of context do not
// override what the call carries.
TEST_F(ClusterHop, EventMetadataAndHeadersCrossTheHop) {
  MetadataGreeter greeter;
  auto host = testing::HostService("greeter", cluster->a->address(), &greeter);
  ASSERT_NE(host, nullptr);
  ::greeter::v1::HelloReply reply;
  const grpc::Status status =
      CallPeer(cluster->peer_a, "greeter", "event-1", &reply,
               {{kTopicMetadata, "orders"}, {kSequenceMetadata, "7"}, {"x-tenant", "acme"}});
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::map<std::string, std::string> seen = greeter.seen();
  auto value = [&](const std::string& key) {
    auto it = seen.find(key);
    return it == seen.end() ? std::string("(absent)") : it->second;
  };
  EXPECT_EQ(value(kTopicMetadata), "orders");
  EXPECT_EQ(value(kSequenceMetadata), "7");
  EXPECT_EQ(value("x-tenant"), "acme");
  EXPECT_EQ(value(kCidMetadata), "event-1");
  EXPECT_EQ(value(kSourceMetadata), "checkout");
  EXPECT_EQ(value(kAttemptMetadata), "3");
}

TEST_F(ClusterHop, TwoSidecarsWithOneIdAreToldSo) {
  const std::string peer = absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort());
  absl::StatusOr<SidecarProcess> twin =
      SidecarProcess::Start({.config_yaml = ClusterYaml("a", cluster->nats_url, peer)});
  ASSERT_TRUE(twin.ok()) << twin.status();
  auto stub = v1::Sidecar::NewStub(twin->Channel());
  std::string cluster_line;
  EXPECT_TRUE(WaitUntil([&] {
    v1::SidecarStats stats;
    grpc::ClientContext context;
    if (!stub->GetStats(&context, v1::GetStatsRequest(), &stats).ok()) return false;
    cluster_line = stats.cluster();
    return absl::StrContains(cluster_line, "uses this sidecar's id a");
  })) << cluster_line;
}

// The cluster line of GetStats of the sidecar at `stub` ("" if it cannot be had).
std::string ClusterLine(v1::Sidecar::Stub* stub) {
  v1::SidecarStats stats;
  grpc::ClientContext context;
  if (!stub->GetStats(&context, v1::GetStatsRequest(), &stats).ok()) return "";
  return stats.cluster();
}

// A NATS that wants a token: sidecars with the token file form the cluster; one with a wrong
// token keeps serving its local calls and says why it is not in the cluster.
TEST(ClusterNats, TokenFromAFileAuthenticatesAndAWrongOneIsReported) {
  const std::string dir = testing::NewTempDir("tokens");
  std::ofstream(dir + "/right") << "s3cret-token\n";
  std::ofstream(dir + "/wrong") << "not-the-token\n";
  absl::StatusOr<Cluster> cluster = StartCluster(
      {"--auth", "s3cret-token"}, absl::StrCat("  nats_token_file: ", dir, "/right\n"));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  greeter::GreeterService greeter;
  auto a = v1::Sidecar::NewStub(cluster->a->Channel());
  auto host = GreeterOn(*cluster->b, "b", a.get(), &greeter);
  ASSERT_NE(host, nullptr);

  absl::StatusOr<SidecarProcess> intruder = SidecarProcess::Start(
      {.config_yaml = ClusterYaml("c", cluster->nats_url,
                                  absl::StrCat("127.0.0.1:", testing::FreeLoopbackPort()),
                                  absl::StrCat("  nats_token_file: ", dir, "/wrong\n"))});
  ASSERT_TRUE(intruder.ok()) << intruder.status();
  auto c = v1::Sidecar::NewStub(intruder->Channel());
  std::string line;
  EXPECT_TRUE(WaitUntil([&] {
    line = ClusterLine(c.get());
    return absl::StrContains(line, "NATS not connected") &&
           absl::StrContains(absl::AsciiStrToLower(line), "authorization");
  })) << line;
  EXPECT_EQ(HostsOf(c.get(), "greeter"), std::vector<std::string>{});
  EXPECT_EQ(HostsOf(a.get(), "greeter"), std::vector<std::string>{"b"});
}

}  // namespace
}  // namespace callmesh

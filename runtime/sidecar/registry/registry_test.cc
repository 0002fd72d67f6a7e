#include "runtime/sidecar/registry/registry.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"

namespace callmesh::sidecar {
namespace {

// A real gRPC server on a free loopback port with the default health service.
class HealthServer {
 public:
  explicit HealthServer(bool serving) {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    // A server needs at least one service of its own besides health.
    builder.RegisterCallbackGenericService(&unimplemented_);
    server_ = builder.BuildAndStart();
    server_->GetHealthCheckService()->SetServingStatus(serving);
  }
  ~HealthServer() { server_->Shutdown(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }

 private:
  int port_ = 0;
  grpc::CallbackGenericService unimplemented_;
  std::unique_ptr<grpc::Server> server_;
};

// A loopback address nothing listens on: bind a port, then close the server.
std::string ClosedAddress() {
  HealthServer gone(true);
  return gone.address();
}

Registry::Options FastOptions() {
  Registry::Options options;
  options.health_check_interval = absl::Milliseconds(50);
  options.health_check_timeout = absl::Milliseconds(500);
  return options;
}

// FastOptions on `clock`, removing registered instances unreachable for `remove_after`.
Registry::Options OnFakeClock(FakeClock* clock, absl::Duration remove_after) {
  Registry::Options options = FastOptions();
  options.clock = clock;
  options.remove_unreachable_after = remove_after;
  return options;
}

TEST(Registry, UnknownServiceIsNotFoundNamingIt) {
  Registry registry(FastOptions());
  auto picked = registry.Pick("nowhere");
  ASSERT_EQ(picked.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(picked.status().message().find("\"nowhere\""), std::string::npos);
}

TEST(Registry, RoundRobinOverHealthyInstances) {
  HealthServer a(true), b(true), down(false);
  Registry registry(FastOptions());
  ASSERT_TRUE(registry.AddStatic("greeter", a.address()).ok());
  ASSERT_TRUE(registry.AddStatic("greeter", b.address()).ok());
  ASSERT_TRUE(registry.AddStatic("greeter", down.address()).ok());
  registry.CheckHealthNow();
  std::multiset<std::string> picked;
  for (int i = 0; i < 30; ++i) picked.insert((*registry.Pick("greeter"))->address());
  EXPECT_EQ(picked.count(down.address()), 0u);
  EXPECT_EQ(picked.count(a.address()), 15u);
  EXPECT_EQ(picked.count(b.address()), 15u);
}

TEST(Registry, NoHealthyInstanceIsUnavailableWithDetail) {
  const std::string closed = ClosedAddress();
  Registry registry(FastOptions());
  ASSERT_TRUE(registry.AddStatic("billing", closed).ok());
  registry.CheckHealthNow();
  auto picked = registry.Pick("billing");
  ASSERT_EQ(picked.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(picked.status().message().find(closed), std::string::npos) << picked.status();
  EXPECT_NE(picked.status().message().find("health check failed"), std::string::npos)
      << picked.status();
}

TEST(Registry, HealthCheckerNoticesRecovery) {
  HealthServer server(false);
  Registry registry(FastOptions());
  ASSERT_TRUE(registry.AddStatic("greeter", server.address()).ok());
  registry.CheckHealthNow();
  EXPECT_FALSE(registry.Pick("greeter").ok());
  server.SetServing(true);
  registry.StartHealthChecks();
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!registry.Pick("greeter").ok() && absl::Now() < give_up)
    absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(registry.Pick("greeter").ok());
  registry.Stop();
}

TEST(Registry, RegisterIsIdempotentAndDeregisterRemoves) {
  HealthServer server(true);
  Registry registry(FastOptions());
  v1::RegisterServiceRequest request;
  request.set_name("hello");
  request.set_address(server.address());
  request.add_grpc_services("hello.v1.Hello");
  ASSERT_TRUE(registry.Register(request).ok());
  ASSERT_TRUE(registry.Register(request).ok());
  auto listed = registry.List();
  ASSERT_EQ(listed.size(), 1u);
  ASSERT_EQ(listed[0].instances_size(), 1);
  EXPECT_FALSE(listed[0].instances(0).static_());
  EXPECT_EQ(listed[0].instances(0).grpc_services(0), "hello.v1.Hello");

  EXPECT_EQ(registry.Deregister("hello", "127.0.0.1:1").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(registry.Deregister("hello", server.address()).ok());
  EXPECT_FALSE(registry.Contains("hello"));
  EXPECT_EQ(registry.Deregister("hello", server.address()).code(), absl::StatusCode::kNotFound);
}

TEST(Registry, StaticInstancesCannotBeDeregistered) {
  Registry registry(FastOptions());
  ASSERT_TRUE(registry.AddStatic("greeter", "127.0.0.1:50051").ok());
  EXPECT_EQ(registry.Deregister("greeter", "127.0.0.1:50051").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(Registry, RejectsMalformedNamesAndAddresses) {
  Registry registry(FastOptions());
  v1::RegisterServiceRequest request;
  request.set_name("bad name");
  request.set_address("127.0.0.1:1");
  absl::Status bad_name = registry.Register(request);
  EXPECT_EQ(bad_name.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_name.message().find("name"), std::string::npos);
  request.set_name("ok");
  request.set_address("nowhere");
  EXPECT_EQ(registry.Register(request).code(), absl::StatusCode::kInvalidArgument);
  request.set_address("127.0.0.1:1");
  request.add_subscriptions()->set_topic("orders");
  absl::Status bad_sub = registry.Register(request);
  EXPECT_NE(bad_sub.message().find("subscriptions[0].method"), std::string::npos) << bad_sub;
  EXPECT_FALSE(registry.Contains("ok"));
}

// RegisterService refuses what a config file refuses (one grammar, runtime/common/names.h).
TEST(Registry, RefusesWhatAConfigFileRefuses) {
  Registry registry(FastOptions());
  const auto refused = [&](const std::string& address, const std::string& method) {
    v1::RegisterServiceRequest request;
    request.set_name("svc");
    request.set_address(address);
    if (!method.empty()) {
      v1::Subscription* subscription = request.add_subscriptions();
      subscription->set_topic("t");
      subscription->set_method(method);
    }
    return registry.Register(request);
  };
  const absl::Status bad_host = refused("my$host:80", "");
  EXPECT_EQ(bad_host.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad_host.message(),
            "address: has an invalid host \"my$host\" in \"my$host:80\": a host name may only "
            "contain letters, digits, '-' and '.'");
  const absl::Status port_zero = refused("host:0", "");
  EXPECT_EQ(port_zero.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(port_zero.message(),
            "address: must be host:port with a port from 1 to 65535, got \"host:0\"");
  const absl::Status empty_package_part = refused("127.0.0.1:1", "pkg..Svc/M");
  EXPECT_EQ(empty_package_part.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty_package_part.message(),
            "subscriptions[0].method: must be a gRPC method \"package.Service/Method\", got "
            "\"pkg..Svc/M\"");
  EXPECT_FALSE(registry.Contains("svc"));
  EXPECT_TRUE(refused("127.0.0.1:1", "pkg.Svc/M").ok());
}

// The one instance `address` of `service` as ListServices shows it (fails the test if absent).
v1::ServiceInstance Shown(const Registry& registry, const std::string& service,
                          const std::string& address) {
  for (const v1::ServiceInfo& info : registry.List()) {
    if (info.name() != service) continue;
    for (const v1::ServiceInstance& instance : info.instances()) {
      if (instance.address() == address) return instance;
    }
  }
  ADD_FAILURE() << "no instance " << address << " of " << service;
  return {};
}

v1::RegisterServiceRequest Registration(const std::string& name, const std::string& address) {
  v1::RegisterServiceRequest request;
  request.set_name(name);
  request.set_address(address);
  return request;
}

TEST(Registry, ShowsWhyAndSinceWhenAnInstanceIsUnhealthy) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  Registry::Options options = OnFakeClock(&clock, absl::Minutes(5));
  Registry registry(options);
  const std::string dead = ClosedAddress();
  ASSERT_TRUE(registry.Register(Registration("worker", dead)).ok());
  EXPECT_FALSE(Shown(registry, "worker", dead).has_unhealthy_since());

  registry.CheckHealthNow();
  clock.Advance(absl::Minutes(1));
  registry.CheckHealthNow();  // Still failing: the run of failures started at the first probe.
  const v1::ServiceInstance shown = Shown(registry, "worker", dead);
  EXPECT_FALSE(shown.healthy());
  EXPECT_NE(shown.health_detail().find("health check failed"), std::string::npos)
      << shown.health_detail();
  EXPECT_EQ(FromProtoTimestamp(shown.unhealthy_since()), start);
  EXPECT_EQ(FromProtoTimestamp(shown.remove_at()), start + absl::Minutes(5));
}

TEST(Registry, RemovesARegisteredInstanceUnreachableForTheConfiguredTime) {
  FakeClock clock;
  Registry::Options options = OnFakeClock(&clock, absl::Minutes(5));
  Registry registry(options);
  HealthServer alive(true);
  const std::string dead = ClosedAddress();
  ASSERT_TRUE(registry.Register(Registration("worker", dead)).ok());
  ASSERT_TRUE(registry.Register(Registration("worker", alive.address())).ok());
  ASSERT_TRUE(registry.Register(Registration("lonely", dead)).ok());

  registry.CheckHealthNow();
  clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  registry.CheckHealthNow();
  ASSERT_EQ(registry.List().size(), 2u) << "removed before its time";
  EXPECT_EQ(registry.List()[1].instances_size(), 2);

  clock.Advance(absl::Seconds(1));
  registry.CheckHealthNow();
  const std::vector<v1::ServiceInfo> services = registry.List();
  // "lonely" had only the dead instance: the service is gone, as after Deregister.
  ASSERT_EQ(services.size(), 1u);
  EXPECT_EQ(services[0].name(), "worker");
  ASSERT_EQ(services[0].instances_size(), 1);
  EXPECT_EQ(services[0].instances(0).address(), alive.address());
  EXPECT_FALSE(registry.Contains("lonely"));
}

TEST(Registry, TellsOnRemovedOfEachInstanceItRemoves) {
  FakeClock clock;
  Registry::Options options = OnFakeClock(&clock, absl::Minutes(5));
  std::vector<std::string> removed;  // "service address"; CheckHealthNow calls on this thread
  options.on_removed = [&removed](const std::string& service, const std::string& address) {
    removed.push_back(absl::StrCat(service, " ", address));
  };
  Registry registry(options);
  HealthServer alive(true);
  const std::string dead = ClosedAddress();
  ASSERT_TRUE(registry.Register(Registration("worker", dead)).ok());
  ASSERT_TRUE(registry.Register(Registration("worker", alive.address())).ok());
  ASSERT_TRUE(registry.AddStatic("billing", dead).ok());

  registry.CheckHealthNow();
  clock.Advance(absl::Minutes(5) - absl::Seconds(1));
  registry.CheckHealthNow();
  EXPECT_TRUE(removed.empty()) << removed[0];

  clock.Advance(absl::Seconds(1));
  registry.CheckHealthNow();
  // The dead registered instance only: not the live one, not the static one.
  EXPECT_EQ(removed, std::vector<std::string>{"worker " + dead});
  clock.Advance(absl::Hours(1));
  registry.CheckHealthNow();
  EXPECT_EQ(removed.size(), 1u) << "told twice";
}

TEST(Registry, NeverRemovesStaticInstancesOnlyMarksThem) {
  FakeClock clock;
  Registry::Options options = OnFakeClock(&clock, absl::Minutes(5));
  Registry registry(options);
  const std::string dead = ClosedAddress();
  ASSERT_TRUE(registry.AddStatic("billing", dead).ok());
  registry.CheckHealthNow();
  clock.Advance(absl::Hours(1));
  registry.CheckHealthNow();
  const v1::ServiceInstance shown = Shown(registry, "billing", dead);
  EXPECT_FALSE(shown.healthy());
  EXPECT_TRUE(shown.static_());
  EXPECT_TRUE(shown.has_unhealthy_since());
  EXPECT_FALSE(shown.has_remove_at());
}

TEST(Registry, ARecoveredInstanceStartsItsRemovalClockAgain) {
  FakeClock clock;
  Registry::Options options = OnFakeClock(&clock, absl::Minutes(5));
  Registry registry(options);
  HealthServer flaky(false);
  ASSERT_TRUE(registry.Register(Registration("worker", flaky.address())).ok());
  registry.CheckHealthNow();
  EXPECT_EQ(Shown(registry, "worker", flaky.address()).health_detail(), "NOT_SERVING");
  clock.Advance(absl::Minutes(4));
  flaky.SetServing(true);
  registry.CheckHealthNow();
  EXPECT_FALSE(Shown(registry, "worker", flaky.address()).has_unhealthy_since());
  flaky.SetServing(false);
  clock.Advance(absl::Minutes(1));
  registry.CheckHealthNow();
  clock.Advance(absl::Minutes(4));
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.Contains("worker")) << "the failures before recovery counted";
  clock.Advance(absl::Minutes(1));
  registry.CheckHealthNow();
  EXPECT_FALSE(registry.Contains("worker"));
}

TEST(Registry, ZeroRemovalTimeKeepsUnreachableInstances) {
  FakeClock clock;
  Registry::Options options = OnFakeClock(&clock, absl::ZeroDuration());
  Registry registry(options);
  const std::string dead = ClosedAddress();
  ASSERT_TRUE(registry.Register(Registration("worker", dead)).ok());
  registry.CheckHealthNow();
  clock.Advance(absl::Hours(24));
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.Contains("worker"));
  EXPECT_FALSE(Shown(registry, "worker", dead).has_remove_at());
}

// FastOptions of the sidecar `id` of a cluster.
Registry::Options AsSidecar(const std::string& id) {
  Registry::Options options = FastOptions();
  options.sidecar_id = id;
  return options;
}

// Cluster mode: what sidecar `id` at `peer` advertises: `service` at each of `addresses`.
v1::SidecarAdvertisement Advertisement(const std::string& id, const std::string& peer,
                                       const std::string& service,
                                       const std::vector<std::string>& addresses) {
  v1::SidecarAdvertisement advertisement;
  advertisement.set_sidecar(id);
  advertisement.set_peer_address(peer);
  v1::AdvertisedService* advertised = advertisement.add_services();
  advertised->set_name(service);
  for (const std::string& address : addresses) advertised->add_instances()->set_address(address);
  return advertisement;
}

TEST(RegistryCluster, RemoteInstanceIsPickedThroughItsSidecar) {
  HealthServer peer(true);
  Registry registry(AsSidecar("h1"));
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:50051"}));
  ASSERT_TRUE(registry.Contains("greeter"));
  absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_TRUE((*picked)->remote());
  EXPECT_EQ((*picked)->host(), "h3");
  EXPECT_EQ((*picked)->via(), peer.address());
  EXPECT_EQ((*picked)->address(), "127.0.0.1:50051");
  EXPECT_EQ(registry.RemoteSidecars(), std::vector<std::string>{"h3"});
}

TEST(RegistryCluster, LocalInstanceIsPreferredWhileReachable) {
  HealthServer local(true);
  HealthServer peer(true);
  Registry registry(AsSidecar("h1"));
  ASSERT_TRUE(registry.AddStatic("greeter", local.address()).ok());
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:50051"}));
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_FALSE((*picked)->remote());
  }
  local.SetServing(false);
  registry.CheckHealthNow();
  absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_TRUE((*picked)->remote());
}

TEST(RegistryCluster, LocalOnlyPickNeverGoesToAnotherHost) {
  HealthServer peer(true);
  Registry registry(AsSidecar("h1"));
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:50051"}));
  absl::StatusOr<std::shared_ptr<Instance>> picked =
      registry.Pick("greeter", Registry::Reach::kLocalOnly);
  ASSERT_TRUE(absl::IsNotFound(picked.status())) << picked.status();
  EXPECT_NE(picked.status().message().find("no instance on this host (sidecar \"h1\")"),
            std::string::npos)
      << picked.status();
}

TEST(RegistryCluster, NewAdvertisementReplacesTheOldAndRemoveForgetsIt) {
  HealthServer peer(true);
  Registry registry(FastOptions());
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:1"}));
  absl::StatusOr<std::shared_ptr<Instance>> before = registry.Pick("greeter");
  ASSERT_TRUE(before.ok());
  // The same again (a heartbeat): the very same instance object stays.
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:1"}));
  EXPECT_EQ(registry.Pick("greeter")->get(), before->get());
  registry.SetRemote(Advertisement("h3", peer.address(), "fib", {"127.0.0.1:2"}));
  EXPECT_FALSE(registry.Contains("greeter"));
  EXPECT_TRUE(registry.Contains("fib"));
  registry.RemoveRemote("h3");
  EXPECT_FALSE(registry.Contains("fib"));
  EXPECT_TRUE(registry.RemoteSidecars().empty());
}

TEST(RegistryCluster, RemoteInstanceWhoseSidecarIsDownIsSkippedAndNamed) {
  Registry registry(FastOptions());
  const std::string dead = ClosedAddress();
  registry.SetRemote(Advertisement("h3", dead, "greeter", {"127.0.0.1:50051"}));
  absl::StatusOr<std::shared_ptr<Instance>> first = registry.Pick("greeter");
  ASSERT_TRUE(first.ok());
  // Make the channel try (and fail) to connect, as a first call would.
  (*first)->channel()->GetState(/*try_to_connect=*/true);
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while ((*first)->reachable() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(20));
  absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
  ASSERT_TRUE(absl::IsUnavailable(picked.status())) << picked.status();
  EXPECT_NE(picked.status().message().find("127.0.0.1:50051 on h3 (sidecar " + dead),
            std::string::npos)
      << picked.status();
}

TEST(RegistryCluster, PeerWhoseConnectionWasLostIsNotPickedWhileAnotherIsConnected) {
  HealthServer up(true);
  auto going = std::make_unique<HealthServer>(true);
  const std::string going_address = going->address();
  Registry registry(AsSidecar("h1"));
  registry.SetRemote(Advertisement("h2", up.address(), "greeter", {"127.0.0.1:1"}));
  registry.SetRemote(Advertisement("h3", going_address, "greeter", {"127.0.0.1:2"}));
  // Picks ask both channels to connect; wait until both are connected.
  std::set<std::string> connected;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (connected.size() < 2 && absl::Now() < until) {
    absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
    ASSERT_TRUE(picked.ok()) << picked.status();
    if ((*picked)->channel()->GetState(false) == GRPC_CHANNEL_READY) {
      connected.insert((*picked)->host());
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(connected.size(), 2u);
  // h3's sidecar goes away: its connection closes.
  std::shared_ptr<Instance> h3;
  for (int i = 0; i < 2 && h3 == nullptr; ++i) {
    auto picked = registry.Pick("greeter");
    if ((*picked)->host() == "h3") h3 = *picked;
  }
  ASSERT_NE(h3, nullptr);
  going.reset();
  while (h3->channel()->GetState(false) == GRPC_CHANNEL_READY && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_NE(h3->channel()->GetState(false), GRPC_CHANNEL_READY);
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<std::shared_ptr<Instance>> picked = registry.Pick("greeter");
    ASSERT_TRUE(picked.ok()) << picked.status();
    EXPECT_EQ((*picked)->host(), "h2") << "pick " << i;
  }
}

TEST(RegistryCluster, ListShowsHostAndViaAndHealthyLocalAdvertisesOnlyLocal) {
  HealthServer local(true);
  HealthServer peer(true);
  Registry registry(AsSidecar("h1"));
  ASSERT_TRUE(registry.AddStatic("greeter", local.address()).ok());
  registry.SetRemote(Advertisement("h3", peer.address(), "greeter", {"127.0.0.1:50051"}));
  std::vector<v1::ServiceInfo> listed = registry.List();
  ASSERT_EQ(listed.size(), 1u);
  ASSERT_EQ(listed[0].instances_size(), 2);
  EXPECT_EQ(listed[0].instances(0).host(), "h1");
  EXPECT_EQ(listed[0].instances(0).via(), "");
  EXPECT_EQ(listed[0].instances(1).host(), "h3");
  EXPECT_EQ(listed[0].instances(1).via(), peer.address());
  std::vector<v1::AdvertisedService> advertised = registry.HealthyLocal();
  ASSERT_EQ(advertised.size(), 1u);
  ASSERT_EQ(advertised[0].instances_size(), 1);
  EXPECT_EQ(advertised[0].instances(0).address(), local.address());
  local.SetServing(false);
  registry.CheckHealthNow();
  EXPECT_TRUE(registry.HealthyLocal().empty());
}

}  // namespace
}  // namespace callmesh::sidecar

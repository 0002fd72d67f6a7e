// The sidecar's registry: which services exist, where their instances listen, and which of those
// are healthy.
//
//   Registry registry(Registry::Options{});
//   registry.AddStatic("greeter", "127.0.0.1:50051");
//   registry.StartHealthChecks();
//   absl::StatusOr<std::shared_ptr<Instance>> target = registry.Pick("greeter");
//
// Instances come from the configuration file (static) or from RegisterService at run time. Each
// instance owns one gRPC channel that every call to it shares. A background thread probes every
// instance through grpc.health.v1 each `health_check_interval`; an instance whose server has no
// health service counts as healthy as long as it answers. New instances start healthy (nothing is
// known against them yet). Between probes, an instance whose channel is in TRANSIENT_FAILURE (its
// last connection attempt failed, e.g. the process was killed) is skipped too: otherwise retries
// of async calls would be spent against a dead address until the next probe, instead of waiting
// for the instance to come back. gRPC keeps reconnecting such a channel (back-off 200 ms to 1 s).
//
// An instance whose probes keep failing is shown with why and since when (ServiceInstance
// health_detail, unhealthy_since); a registered one is removed once it has failed for
// `Options::remove_unreachable_after` (a static one stays, shown unhealthy). "Since when" and the
// removal read `Options::clock`, probed at each health check.
//
// Cluster mode (runtime/sidecar/cluster/): the registry also holds the instances other sidecars
// advertise (SetRemote). They are never probed from here — their own sidecar publishes only
// healthy ones — and a call to one goes to that sidecar's peer address, which forwards it to its
// local instance. Pick prefers a reachable local instance and uses remote ones only when there is
// none; a remote one whose sidecar cannot be connected to is skipped like a local one.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "callmesh/v1/cluster.pb.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/common/clock.h"

namespace callmesh::sidecar {

// One reachable address of a service. Shared by the registry and the calls in flight to it, so a
// deregistered instance stays valid until its last call ends.
class Instance {
 public:
  Instance(std::string address, bool is_static, std::shared_ptr<grpc::Channel> channel);
  // An instance on another host, reached through its sidecar at `via` on `channel`.
  Instance(std::string address, std::string host, std::string via,
           std::shared_ptr<grpc::Channel> channel);

  // The instance's address (on its own host, for a remote one).
  const std::string& address() const { return address_; }
  // Remote instances: the id of the sidecar whose host runs it, and that sidecar's peer address.
  bool remote() const { return !via_.empty(); }
  const std::string& host() const { return host_; }
  const std::string& via() const { return via_; }
  bool is_static() const { return is_static_; }
  // Last answer of the health probe.
  bool healthy() const { return healthy_.load(std::memory_order_relaxed); }
  // Healthy, and the channel's last connection attempt did not fail: worth sending a call to.
  bool reachable() const;
  grpc::Channel* channel() const { return channel_.get(); }
  // Stub for byte-level calls on any method path; thread-safe, shared by all calls.
  grpc::GenericStub* stub() { return &stub_; }

 private:
  friend class Registry;
  const std::string address_;
  const bool is_static_;
  const std::string host_;
  const std::string via_;
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
  std::atomic<bool> healthy_{true};
  // Remote instances: the channel to their sidecar has been seen READY (Registry::Pick).
  std::atomic<bool> was_connected_{false};
  // Guarded by Registry::mu_.
  std::string health_detail_;
  absl::Time last_checked_at_ = absl::InfinitePast();
  // First failed probe of the current run of failures; InfinitePast while healthy.
  absl::Time unhealthy_since_ = absl::InfinitePast();
  std::vector<std::string> grpc_services_;
};

// Keepalive of the channels to peer sidecars (cluster mode): a ping every 2 s while connected,
// the connection closed when one is not answered within 2 s. The peer listener must accept pings
// that often.
inline constexpr int kPeerKeepaliveTimeMs = 2000;
inline constexpr int kPeerKeepaliveTimeoutMs = 2000;

class Registry {
 public:
  struct Options {
    absl::Duration health_check_interval = absl::Seconds(2);
    // Deadline of one probe.
    absl::Duration health_check_timeout = absl::Seconds(1);
    // Largest reply accepted from a target, in bytes.
    int max_receive_bytes = 4 << 20;
    // Credentials of every channel to an instance (outbound_credentials.h); null = plaintext.
    std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
    // A registered instance whose probes have failed for this long is removed (as by
    // Deregister); zero = never. Static instances are never removed.
    absl::Duration remove_unreachable_after = absl::ZeroDuration();
    // Time of last_checked_at, unhealthy_since and the removal (not owned; must outlive the
    // registry). Probe deadlines are on the real clock, as gRPC's are.
    Clock* clock = Clock::Real();
    // Called (outside the registry's lock, on the health-check thread) for each registered
    // instance removed for being unreachable, e.g. to give back the registrant's quota as
    // Deregister's caller does. May be empty.
    std::function<void(const std::string& service, const std::string& address)> on_removed;
    // Cluster mode: this sidecar's id, shown as the host of local instances ("" = single host).
    std::string sidecar_id;
    // Credentials of the channels to other sidecars' peer listeners; null = plaintext.
    std::shared_ptr<grpc::ChannelCredentials> peer_channel_credentials;
  };

  // Which instances a call may go to.
  enum class Reach {
    kAnyHost,    // local ones first, else those of other hosts (cluster mode)
    kLocalOnly,  // only this host's: a call forwarded by another sidecar
  };

  explicit Registry(Options options);
  // Stops the health checker.
  ~Registry();

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Adds an instance from the configuration. INVALID_ARGUMENT for a malformed name or address.
  absl::Status AddStatic(const std::string& name, const std::string& address);

  // Adds (or refreshes) an instance registered at run time. Registering the same name and address
  // again is a no-op apart from updating its grpc_services and subscriptions. INVALID_ARGUMENT for
  // a malformed name or address, naming the field.
  absl::Status Register(const v1::RegisterServiceRequest& request);

  // Removes a run-time instance. NOT_FOUND if the service or address is not registered;
  // FAILED_PRECONDITION for an instance from the configuration file.
  absl::Status Deregister(absl::string_view name, absl::string_view address);

  // The next healthy instance of `service`, round-robin. NOT_FOUND naming the service if it is
  // unknown; UNAVAILABLE naming the service and the instances' health when none is healthy.
  absl::StatusOr<std::shared_ptr<Instance>> Pick(absl::string_view service,
                                                 Reach reach = Reach::kAnyHost);

  // Cluster mode: replaces the instances `advertisement.sidecar` advertised before with those it
  // advertises now. Instances still advertised keep their identity (and calls in flight).
  void SetRemote(const v1::SidecarAdvertisement& advertisement);
  // Forgets every instance `sidecar` advertised (it left, or was not heard of for too long).
  void RemoveRemote(absl::string_view sidecar);
  // The ids of the sidecars whose instances are known, sorted.
  std::vector<std::string> RemoteSidecars() const;
  // The local instances worth advertising to other sidecars: the reachable ones, by service,
  // sorted by name.
  std::vector<v1::AdvertisedService> HealthyLocal() const;

  // True if `service` has at least one instance (healthy or not), on any host.
  bool Contains(absl::string_view service) const;

  // Every service with its instances, sorted by name.
  std::vector<v1::ServiceInfo> List() const;

  // Starts the background prober; Stop (or the destructor) ends it.
  void StartHealthChecks();
  void Stop();

  // Probes every instance once, now, and waits for the answers; then removes the registered
  // instances unhealthy for at least remove_unreachable_after. For start-up and tests.
  void CheckHealthNow();

 private:
  struct Service {
    std::vector<std::shared_ptr<Instance>> instances;
    std::vector<v1::Subscription> subscriptions;
    std::atomic<uint64_t> next{0};
  };
  // Cluster mode: one service's instances on other hosts.
  struct RemoteService {
    std::vector<std::shared_ptr<Instance>> instances;
    std::atomic<uint64_t> next{0};
  };

  std::shared_ptr<Instance> MakeInstance(const std::string& address, bool is_static) const;
  // The pick among a service's instances on other hosts (connected peers first; registry.cc).
  static std::shared_ptr<Instance> PickRemote(
      const std::vector<std::shared_ptr<Instance>>& instances, std::atomic<uint64_t>& next);
  // `keepalive`: ping the server while connected (channels to peer sidecars).
  std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                             std::shared_ptr<grpc::ChannelCredentials> credentials,
                                             bool keepalive) const;
  // The one channel to the peer listener at `address`, shared by its remote instances.
  std::shared_ptr<grpc::Channel> PeerChannel(const std::string& address)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveRemoteLocked(absl::string_view sidecar) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddInstance(const std::string& name, const std::string& address, bool is_static,
                           const v1::RegisterServiceRequest* request);
  void HealthLoop();
  // Removes the registered instances unhealthy since `now - remove_unreachable_after` or longer,
  // then tells options_.on_removed of each.
  void RemoveUnreachable(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Service>, std::less<>> services_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::unique_ptr<RemoteService>, std::less<>> remote_ ABSL_GUARDED_BY(mu_);
  // Sidecar id -> the advertisement its remote instances came from.
  std::map<std::string, v1::SidecarAdvertisement, std::less<>> remote_sidecars_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<grpc::Channel>, std::less<>> peer_channels_
      ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread health_thread_;
};

}  // namespace callmesh::sidecar

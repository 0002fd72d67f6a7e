#include "runtime/sidecar/registry/registry.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <algorithm>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar {
namespace {

// A restarted target should be reachable again within about a second, not after gRPC's default
// reconnect back-off of up to two minutes.
constexpr int kInitialReconnectBackoffMs = 200;
constexpr int kMaxReconnectBackoffMs = 1000;

}  // namespace

Instance::Instance(std::string address, bool is_static, std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      is_static_(is_static),
      channel_(std::move(channel)),
      stub_(channel_) {}

Instance::Instance(std::string address, std::string host, std::string via,
                   std::shared_ptr<grpc::Channel> channel)
    : address_(std::move(address)),
      is_static_(false),
      host_(std::move(host)),
      via_(std::move(via)),
      channel_(std::move(channel)),
      stub_(channel_) {}

bool Instance::reachable() const {
  return healthy() &&
         channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_TRANSIENT_FAILURE;
}

Registry::Registry(Options options) : options_(options) {}

Registry::~Registry() { Stop(); }

std::shared_ptr<Instance> Registry::MakeInstance(const std::string& address, bool is_static) const {
  return std::make_shared<Instance>(
      address, is_static, MakeChannel(address, options_.channel_credentials, /*keepalive=*/false));
}

std::shared_ptr<grpc::Channel> Registry::MakeChannel(
    const std::string& address, std::shared_ptr<grpc::ChannelCredentials> credentials,
    bool keepalive) const {
  grpc::ChannelArguments args;
  if (keepalive) {
    // A peer sidecar that hangs (SIGSTOP) or whose host is cut off still has open connections;
    // unanswered pings close them, so the calls in flight fail over instead of waiting for their
    // deadlines. The peer listener permits these pings (StartCluster in sidecar.cc).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kPeerKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kPeerKeepaliveTimeoutMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  args.SetMaxReceiveMessageSize(options_.max_receive_bytes);
  // Every instance gets its own connection even when two share an address.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // No gRPC retries: callmesh retries durable calls, callbacks and events itself, by its own
  // policy, and a sync Invoke is not retried. gRPC's retry filter still cost every call its
  // bookkeeping (sidecar CPU per proxied call 50-52 -> 45-46 us, h2load; bench/README.md "Round
  // four"). What goes with it is gRPC's transparent retry of a call that never reached the
  // instance (a stream refused by a GOAWAY). C++ gRPC servers on the libgrpc 1.51 we build with
  // shut down with a graceful GOAWAY that leaves no such window (other servers may not); a call
  // caught in one answers UNAVAILABLE, the caller's to retry.
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  return grpc::CreateCustomChannel(
      address, credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(), args);
}

std::shared_ptr<grpc::Channel> Registry::PeerChannel(const std::string& address) {
  std::shared_ptr<grpc::Channel>& channel = peer_channels_[address];
  if (channel == nullptr) {
    channel = MakeChannel(address, options_.peer_channel_credentials, /*keepalive=*/true);
  }
  return channel;
}

absl::Status Registry::AddStatic(const std::string& name, const std::string& address) {
  return AddInstance(name, address, /*is_static=*/true, nullptr);
}

absl::Status Registry::Register(const v1::RegisterServiceRequest& request) {
  return AddInstance(request.name(), request.address(), /*is_static=*/false, &request);
}

absl::Status Registry::AddInstance(const std::string& name, const std::string& address,
                                   bool is_static, const v1::RegisterServiceRequest* request) {
  if (absl::Status s = ValidateServiceName(name, "name"); !s.ok()) return s;
  if (absl::Status s = ValidateAddress(address, "address"); !s.ok()) return s;
  if (request != nullptr) {
    for (int i = 0; i < request->subscriptions_size(); ++i) {
      const auto& sub = request->subscriptions(i);
      const std::string path = absl::StrCat("subscriptions[", i, "]");
      if (absl::Status s = ValidateTopic(sub.topic(), absl::StrCat(path, ".topic")); !s.ok()) {
        return s;
      }
      if (auto method = MethodPath(sub.method(), absl::StrCat(path, ".method")); !method.ok()) {
        return method.status();
      }
    }
  }
  absl::MutexLock lock(&mu_);
  auto& service = services_[name];
  if (service == nullptr) service = std::make_unique<Service>();
  auto it = std::find_if(service->instances.begin(), service->instances.end(),
                         [&](const auto& i) { return i->address() == address; });
  std::shared_ptr<Instance> instance;
  if (it != service->instances.end()) {
    instance = *it;
  } else {
    instance = MakeInstance(address, is_static);
    service->instances.push_back(instance);
    spdlog::info("registry: added {} instance {} of service {}",
                 is_static ? "static" : "registered", address, name);
  }
  if (request != nullptr) {
    instance->grpc_services_.assign(request->grpc_services().begin(),
                                    request->grpc_services().end());
    for (const auto& sub : request->subscriptions()) {
      const bool known = std::any_of(
          service->subscriptions.begin(), service->subscriptions.end(),
          [&](const auto& s) { return s.topic() == sub.topic() && s.method() == sub.method(); });
      if (!known) service->subscriptions.push_back(sub);
    }
  }
  return absl::OkStatus();
}

absl::Status Registry::Deregister(absl::string_view name, absl::string_view address) {
  absl::MutexLock lock(&mu_);
  auto it = services_.find(name);
  if (it == services_.end()) {
    return absl::NotFoundError(absl::StrCat("service \"", name, "\" is not registered"));
  }
  auto& instances = it->second->instances;
  auto inst = std::find_if(instances.begin(), instances.end(),
                           [&](const auto& i) { return i->address() == address; });
  if (inst == instances.end()) {
    return absl::NotFoundError(
        absl::StrCat("service \"", name, "\" has no instance at \"", address, "\""));
  }
  if ((*inst)->is_static()) {
    return absl::FailedPreconditionError(
        absl::StrCat("instance ", address, " of service \"", name,
                     "\" comes from the configuration file and cannot be deregistered"));
  }
  instances.erase(inst);
  spdlog::info("registry: removed instance {} of service {}", std::string(address),
               std::string(name));
  if (instances.empty()) services_.erase(it);
  return absl::OkStatus();
}

namespace {

// Round-robin over the reachable instances of `instances`, so an unhealthy instance's share is
// spread evenly. The flags are read once into a snapshot so a concurrent probe cannot make the
// pick miss. nullptr if none is reachable.
std::shared_ptr<Instance> PickReachable(const std::vector<std::shared_ptr<Instance>>& instances,
                                        std::atomic<uint64_t>& next) {
  absl::InlinedVector<const std::shared_ptr<Instance>*, 8> reachable;
  for (const auto& instance : instances) {
    if (instance->reachable()) reachable.push_back(&instance);
  }
  if (reachable.empty()) return nullptr;
  return *reachable[next.fetch_add(1, std::memory_order_relaxed) % reachable.size()];
}

}  // namespace

// Instances on other hosts, round-robin within the first non-empty group of: those whose sidecar
// is connected (channel READY); those never connected yet; those whose connection was lost. A
// peer whose sidecar was just killed has a channel that is IDLE, not yet TRANSIENT_FAILURE, and a
// call sent there would fail; a new peer's channel is IDLE too, but worth trying. Channels that
// are not connected are asked to connect, which brings a new or restarted peer into the first
// group, or moves a dead one to TRANSIENT_FAILURE (not reachable, skipped).
std::shared_ptr<Instance> Registry::PickRemote(
    const std::vector<std::shared_ptr<Instance>>& instances, std::atomic<uint64_t>& next) {
  absl::InlinedVector<const std::shared_ptr<Instance>*, 8> ready, fresh, lost;
  for (const auto& instance : instances) {
    if (!instance->reachable()) continue;
    if (instance->channel()->GetState(/*try_to_connect=*/true) == GRPC_CHANNEL_READY) {
      instance->was_connected_.store(true, std::memory_order_relaxed);
      ready.push_back(&instance);
    } else if (instance->was_connected_.load(std::memory_order_relaxed)) {
      lost.push_back(&instance);
    } else {
      fresh.push_back(&instance);
    }
  }
  const auto& pool = !ready.empty() ? ready : !fresh.empty() ? fresh : lost;
  if (pool.empty()) return nullptr;
  return *pool[next.fetch_add(1, std::memory_order_relaxed) % pool.size()];
}

absl::StatusOr<std::shared_ptr<Instance>> Registry::Pick(absl::string_view service_name,
                                                         Reach reach) {
  absl::ReaderMutexLock lock(&mu_);
  auto local = services_.find(service_name);
  auto remote = reach == Reach::kAnyHost ? remote_.find(service_name) : remote_.end();
  if (local == services_.end() && remote == remote_.end()) {
    if (reach == Reach::kLocalOnly) {
      return absl::NotFoundError(absl::StrCat("service \"", service_name,
                                              "\" has no instance on this host (sidecar \"",
                                              options_.sidecar_id, "\")"));
    }
    return absl::NotFoundError(absl::StrCat(
        "unknown service \"", service_name, "\": not in the configuration and not registered",
        options_.sidecar_id.empty() ? "" : ", here or on another host of the cluster"));
  }
  if (local != services_.end()) {
    if (auto picked = PickReachable(local->second->instances, local->second->next)) return picked;
  }
  if (remote != remote_.end()) {
    if (auto picked = PickRemote(remote->second->instances, remote->second->next)) return picked;
  }
  std::vector<std::string> states;
  if (local != services_.end()) {
    for (const auto& instance : local->second->instances) {
      const std::string detail =
          instance->healthy() ? "connection failing" : instance->health_detail_;
      states.push_back(absl::StrCat(instance->address(), " (", detail, ")"));
    }
  }
  if (remote != remote_.end()) {
    for (const auto& instance : remote->second->instances) {
      states.push_back(absl::StrCat(instance->address(), " on ", instance->host(), " (sidecar ",
                                    instance->via(), " cannot be reached)"));
    }
  }
  return absl::UnavailableError(absl::StrCat(
      "service \"", service_name, "\" has no healthy instance: ", absl::StrJoin(states, ", ")));
}

void Registry::SetRemote(const v1::SidecarAdvertisement& advertisement) {
  absl::MutexLock lock(&mu_);
  auto known = remote_sidecars_.find(advertisement.sidecar());
  if (known != remote_sidecars_.end() &&
      known->second.peer_address() == advertisement.peer_address() &&
      known->second.services_size() == advertisement.services_size()) {
    // Unchanged apart from the time it was sent: nothing to redo (the common heartbeat).
    bool same = true;
    for (int i = 0; same && i < advertisement.services_size(); ++i) {
      same = known->second.services(i).SerializeAsString() ==
             advertisement.services(i).SerializeAsString();
    }
    if (same) return;
  }
  // The instances kept, by service and address, so that calls in flight keep theirs.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<Instance>> previous;
  for (auto& [name, service] : remote_) {
    for (auto& instance : service->instances) {
      if (instance->host() == advertisement.sidecar()) {
        previous[{name, instance->address()}] = instance;
      }
    }
  }
  RemoveRemoteLocked(advertisement.sidecar());
  std::shared_ptr<grpc::Channel> channel = PeerChannel(advertisement.peer_address());
  for (const v1::AdvertisedService& advertised : advertisement.services()) {
    if (!ValidateServiceName(advertised.name(), "name").ok()) continue;
    auto& service = remote_[advertised.name()];
    if (service == nullptr) service = std::make_unique<RemoteService>();
    for (const v1::AdvertisedInstance& advertised_instance : advertised.instances()) {
      auto kept = previous.find({advertised.name(), advertised_instance.address()});
      std::shared_ptr<Instance> instance =
          kept != previous.end() && kept->second->via() == advertisement.peer_address()
              ? kept->second
              : std::make_shared<Instance>(advertised_instance.address(), advertisement.sidecar(),
                                           advertisement.peer_address(), channel);
      instance->grpc_services_.assign(advertised_instance.grpc_services().begin(),
                                      advertised_instance.grpc_services().end());
      service->instances.push_back(std::move(instance));
    }
  }
  if (known == remote_sidecars_.end()) {
    spdlog::info("registry: sidecar {} at {} joined with {} service(s)", advertisement.sidecar(),
                 advertisement.peer_address(), advertisement.services_size());
  }
  remote_sidecars_[advertisement.sidecar()] = advertisement;
}

void Registry::RemoveRemote(absl::string_view sidecar) {
  absl::MutexLock lock(&mu_);
  auto known = remote_sidecars_.find(sidecar);
  if (known == remote_sidecars_.end()) return;
  remote_sidecars_.erase(known);
  RemoveRemoteLocked(sidecar);
  spdlog::info("registry: sidecar {} left; its instances are no longer called",
               std::string(sidecar));
}

void Registry::RemoveRemoteLocked(absl::string_view sidecar) {
  for (auto it = remote_.begin(); it != remote_.end();) {
    auto& instances = it->second->instances;
    instances.erase(std::remove_if(instances.begin(), instances.end(),
                                   [&](const auto& i) { return i->host() == sidecar; }),
                    instances.end());
    it = instances.empty() ? remote_.erase(it) : std::next(it);
  }
}

std::vector<std::string> Registry::RemoteSidecars() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& [id, advertisement] : remote_sidecars_) ids.push_back(id);
  return ids;
}

std::vector<v1::AdvertisedService> Registry::HealthyLocal() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<v1::AdvertisedService> out;
  for (const auto& [name, service] : services_) {
    v1::AdvertisedService advertised;
    advertised.set_name(name);
    for (const auto& instance : service->instances) {
      if (!instance->reachable()) continue;
      v1::AdvertisedInstance* i = advertised.add_instances();
      i->set_address(instance->address());
      for (const auto& s : instance->grpc_services_) i->add_grpc_services(s);
    }
    if (advertised.instances_size() > 0) out.push_back(std::move(advertised));
  }
  return out;
}

bool Registry::Contains(absl::string_view service) const {
  absl::ReaderMutexLock lock(&mu_);
  return services_.find(service) != services_.end() || remote_.find(service) != remote_.end();
}

std::vector<v1::ServiceInfo> Registry::List() const {
  absl::ReaderMutexLock lock(&mu_);
  std::map<std::string, v1::ServiceInfo> by_name;
  for (const auto& [name, service] : services_) {
    v1::ServiceInfo& info = by_name[name];
    info.set_name(name);
    for (const auto& instance : service->instances) {
      v1::ServiceInstance* i = info.add_instances();
      i->set_address(instance->address());
      i->set_host(options_.sidecar_id);
      i->set_healthy(instance->reachable());
      i->set_static_(instance->is_static());
      for (const auto& s : instance->grpc_services_) i->add_grpc_services(s);
      if (instance->last_checked_at_ != absl::InfinitePast()) {
        *i->mutable_last_checked_at() = ToProtoTimestamp(instance->last_checked_at_);
      }
      i->set_health_detail(instance->healthy() && !i->healthy() ? "connection failing"
                                                                : instance->health_detail_);
      if (instance->unhealthy_since_ != absl::InfinitePast()) {
        *i->mutable_unhealthy_since() = ToProtoTimestamp(instance->unhealthy_since_);
        if (!instance->is_static() && options_.remove_unreachable_after > absl::ZeroDuration()) {
          *i->mutable_remove_at() =
              ToProtoTimestamp(instance->unhealthy_since_ + options_.remove_unreachable_after);
        }
      }
    }
    for (const auto& sub : service->subscriptions) *info.add_subscriptions() = sub;
  }
  for (const auto& [name, service] : remote_) {
    v1::ServiceInfo& info = by_name[name];
    info.set_name(name);
    for (const auto& instance : service->instances) {
      v1::ServiceInstance* i = info.add_instances();
      i->set_address(instance->address());
      i->set_healthy(instance->reachable());
      i->set_host(instance->host());
      i->set_via(instance->via());
      for (const auto& s : instance->grpc_services_) i->add_grpc_services(s);
      if (!i->healthy()) {
        i->set_health_detail(
            absl::StrCat("its sidecar at ", instance->via(), " cannot be reached"));
      }
    }
  }
  std::vector<v1::ServiceInfo> out;
  out.reserve(by_name.size());
  for (auto& [name, info] : by_name) out.push_back(std::move(info));
  return out;
}

void Registry::CheckHealthNow() {
  std::vector<std::pair<std::string, std::shared_ptr<Instance>>> targets;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, service] : services_) {
      for (const auto& instance : service->instances) targets.emplace_back(name, instance);
    }
  }
  struct Probe {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status;
    absl::Notification done;
  };
  std::vector<std::unique_ptr<Probe>> probes;
  for (auto& [name, instance] : targets) {
    auto probe = std::make_unique<Probe>();
    probe->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.health_check_timeout));
    grpc::health::v1::Health::Stub stub(instance->channel_);
    Probe* p = probe.get();
    stub.async()->Check(&p->context, &p->request, &p->response, [p](grpc::Status status) {
      p->status = std::move(status);
      p->done.Notify();
    });
    probes.push_back(std::move(probe));
  }
  const absl::Time now = options_.clock->Now();
  for (size_t k = 0; k < probes.size(); ++k) {
    Probe& p = *probes[k];
    p.done.WaitForNotification();
    bool healthy;
    std::string detail;
    if (p.status.ok()) {
      healthy = p.response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
      detail = grpc::health::v1::HealthCheckResponse::ServingStatus_Name(p.response.status());
    } else if (p.status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      healthy = true;  // Answers, but has no health service.
      detail = "no health service";
    } else {
      healthy = false;
      detail = absl::StrCat("health check failed: ", p.status.error_message());
    }
    Instance& instance = *targets[k].second;
    const bool was = instance.healthy_.exchange(healthy);
    if (was != healthy) {
      spdlog::info("registry: instance {} of service {} is now {} ({})", instance.address(),
                   targets[k].first, healthy ? "healthy" : "unhealthy", detail);
    }
    absl::MutexLock lock(&mu_);
    instance.health_detail_ = std::move(detail);
    instance.last_checked_at_ = now;
    if (healthy) {
      instance.unhealthy_since_ = absl::InfinitePast();
    } else if (instance.unhealthy_since_ == absl::InfinitePast()) {
      instance.unhealthy_since_ = now;
    }
  }
  RemoveUnreachable(now);
}

void Registry::RemoveUnreachable(absl::Time now) {
  if (options_.remove_unreachable_after <= absl::ZeroDuration()) return;
  std::vector<std::pair<std::string, std::string>> removed;  // service, address
  {
    absl::MutexLock lock(&mu_);
    for (auto service = services_.begin(); service != services_.end();) {
      auto& instances = service->second->instances;
      for (auto it = instances.begin(); it != instances.end();) {
        const Instance& instance = **it;
        if (instance.is_static() || instance.unhealthy_since_ == absl::InfinitePast() ||
            now - instance.unhealthy_since_ < options_.remove_unreachable_after) {
          ++it;
          continue;
        }
        spdlog::warn(
            "registry: removed instance {} of service {}: unhealthy since {} ({}), longer than "
            "remove_unreachable_after {}",
            instance.address(), service->first, absl::FormatTime(instance.unhealthy_since_),
            instance.health_detail_, absl::FormatDuration(options_.remove_unreachable_after));
        removed.emplace_back(service->first, instance.address());
        it = instances.erase(it);
      }
      if (instances.empty()) {
        service = services_.erase(service);
      } else {
        ++service;
      }
    }
  }
  if (!options_.on_removed) return;
  for (const auto& [service, address] : removed) options_.on_removed(service, address);
}

void Registry::StartHealthChecks() {
  if (health_thread_.joinable()) return;
  health_thread_ = std::thread([this] { HealthLoop(); });
}

void Registry::HealthLoop() {
  do {
    CheckHealthNow();
  } while (!stop_.WaitForNotificationWithTimeout(options_.health_check_interval));
}

void Registry::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (health_thread_.joinable()) health_thread_.join();
}

}  // namespace callmesh::sidecar

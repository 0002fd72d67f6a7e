#include "runtime/sidecar/sidecar.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <random>

#include "absl/strings/str_cat.h"
#include "runtime/common/message_limits.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/tls/spiffe_id.h"
#include "runtime/common/version.h"
#include "runtime/sidecar/calls/call_states.h"
#include "runtime/sidecar/calls/callback.h"
#include "runtime/sidecar/metrics/process_metrics.h"
#include "runtime/sidecar/registry/outbound_credentials.h"
#include "runtime/sidecar/security/data_dir_permissions.h"
#include "runtime/sidecar/security/server_credentials.h"
#include "runtime/sidecar/server/malformed_requests.h"
#include "spdlog/spdlog.h"

namespace callmesh {
namespace {

using sidecar::CallStore;

// Worker threads for blocking work: the RPCs that wait for a store write (CancelCall,
// RedriveDeadLetter), WaitCall and WatchCompletions reads, event fan-out, purges, and the
// dispatcher's reads of calls beyond held_record_bytes. The dispatcher and the callback deliverer
// no longer wait for journal writes (issue 18, round three); when they did, 64 instead of 16 let
// more calls end per fsync. Not re-measured since; idle workers cost a stack each, no CPU.
constexpr int kWorkerThreads = 64;
// The grpc.health.v1 service name that is SERVING while cluster mode's shared registry works.
constexpr char kClusterHealthService[] = "callmesh.cluster";
// How often the store's (and the cluster's) health is looked at.
constexpr absl::Duration kStoreHealthEvery = absl::Milliseconds(200);

absl::Status PrepareDataDir(const std::string& dir) {
  // Owner only: the journal holds every caller's requests and results.
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": cannot create: ", std::strerror(errno)));
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("data_dir ", dir, ": not a directory"));
  }
  if (access(dir.c_str(), R_OK | W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("data_dir ", dir, ": not readable and writable: ", std::strerror(errno)));
  }
  return sidecar::security::RestrictDataDir(dir);
}

// The largest request a listener takes: a payload at the limit with room for the envelope around
// it, so the size check answers with its own message rather than gRPC's.
int MaxRequestBytes(const v1::SidecarConfig& config) {
  return static_cast<int>(MaxWrappedMessageBytes(config.max_payload_bytes()));
}

// After BuildAndStart: the address a listener bound (`listen` with the port it got, for port 0),
// or FAILED_PRECONDITION naming the config key when it did not bind.
absl::StatusOr<std::string> BoundAddress(absl::string_view key, const std::string& listen,
                                         const grpc::Server* server, int port) {
  if (server == nullptr || port == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        key, " ", listen, ": cannot listen there (address in use, or not a local address?)"));
  }
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", port);
}

// `gatekeeper` (not owned) gets back the quota of each instance the registry removes.
sidecar::Registry::Options RegistryOptions(const v1::SidecarConfig& config, Clock* clock,
                                           std::shared_ptr<grpc::ChannelCredentials> outbound,
                                           std::shared_ptr<grpc::ChannelCredentials> peer_outbound,
                                           sidecar::security::Gatekeeper* gatekeeper) {
  sidecar::Registry::Options options;
  options.on_removed = [gatekeeper](const std::string& service, const std::string& address) {
    gatekeeper->InstanceGone(service, address);
  };
  options.channel_credentials = std::move(outbound);
  options.peer_channel_credentials = std::move(peer_outbound);
  if (config.has_cluster()) options.sidecar_id = config.cluster().sidecar_id();
  options.health_check_interval = FromProtoDuration(config.health_check_interval());
  options.remove_unreachable_after = FromProtoDuration(config.remove_unreachable_after());
  options.clock = clock;
  options.max_receive_bytes = static_cast<int>(config.max_payload_bytes());
  return options;
}

sidecar::Invoker::Options InvokerOptions(const v1::SidecarConfig& config) {
  sidecar::Invoker::Options options;
  options.max_payload_bytes = config.max_payload_bytes();
  options.default_timeout = FromProtoDuration(config.default_attempt_timeout());
  return options;
}

// The exporter of `tracing`, or null when no endpoint is configured (or it is refused, which
// validation prevents).
std::unique_ptr<tracing::SpanExporter> MakeSpanExporter(const v1::SidecarConfig& config) {
  if (config.tracing().endpoint().empty()) return nullptr;
  tracing::SpanExporter::Options options{.endpoint = config.tracing().endpoint(),
                                         .service_name = absl::StrCat("callmeshd/", config.name())};
  if (config.tracing().max_queued_spans() > 0) {
    options.max_queued = config.tracing().max_queued_spans();
  }
  if (config.tracing().has_flush_interval()) {
    options.flush_interval = FromProtoDuration(config.tracing().flush_interval());
  }
  absl::StatusOr<std::unique_ptr<tracing::SpanExporter>> exporter =
      tracing::SpanExporter::Create(std::move(options));
  if (!exporter.ok()) {
    spdlog::error("tracing off: {}", exporter.status().ToString());
    return nullptr;
  }
  spdlog::info("tracing: exporting spans of durable calls to {}", config.tracing().endpoint());
  return *std::move(exporter);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::Start(const v1::SidecarConfig& config,
                                                        SidecarEnv env) {
  // The security files first: a bad one changes nothing, not even the data directory.
  absl::StatusOr<std::unique_ptr<sidecar::security::Gatekeeper>> gatekeeper =
      sidecar::security::Gatekeeper::Create(config, env.clock);
  if (!gatekeeper.ok()) return gatekeeper.status();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      sidecar::security::SidecarServerCredentials(config.security());
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> outbound =
      sidecar::OutboundCredentials(config);
  if (!outbound.ok()) return outbound.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> peer_outbound =
      config.has_cluster() ? sidecar::OutboundCredentials(config, tls::IdentityKind::kSidecar)
                           : nullptr;
  if (!peer_outbound.ok()) return peer_outbound.status();
  if (absl::Status s = PrepareDataDir(config.data_dir()); !s.ok()) return s;
  if (!env.jitter_seed.has_value()) env.jitter_seed = std::random_device()();
  sidecar::JournalOptions journal_options = sidecar::JournalOptionsFromConfig(config);
  journal_options.env = env.storage;
  journal_options.clock = [clock = env.clock] { return clock->Now(); };
  auto metrics = std::make_unique<metrics::SidecarMetrics>();
  journal_options.on_batch_written = [metrics = metrics.get()](size_t mutations,
                                                               absl::Duration took, bool synced) {
    metrics->JournalBatchWritten(mutations, took, synced);
  };
  absl::StatusOr<std::unique_ptr<sidecar::Journal>> journal =
      sidecar::Journal::Open(journal_options);
  if (!journal.ok()) return journal.status();
  absl::StatusOr<std::unique_ptr<sidecar::pubsub::TopicLog>> topics =
      sidecar::pubsub::TopicLog::Open(journal->get(),
                                      sidecar::pubsub::TopicLogOptionsFromConfig(
                                          config, [clock = env.clock] { return clock->Now(); }));
  if (!topics.ok()) return topics.status();
  std::unique_ptr<Sidecar> sidecar(new Sidecar(config, env, std::move(metrics), *std::move(journal),
                                               *std::move(gatekeeper), *std::move(outbound),
                                               *std::move(peer_outbound), *std::move(topics)));

  for (int i = 0; i < config.services_size(); ++i) {
    for (const std::string& address : config.services(i).addresses()) {
      if (absl::Status s = sidecar->registry_.AddStatic(config.services(i).name(), address);
          !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("services[", i, "]: ", s.message()));
      }
    }
  }

  // Before the Sidecar API serves, so every RPC sees cluster mode whole.
  if (config.has_cluster()) {
    if (absl::Status s = sidecar->StartCluster(*credentials); !s.ok()) return s;
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second process share a port in use.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(config.listen(), *credentials, &port);
  builder.RegisterService(&sidecar->service_);
  builder.RegisterCallbackGenericService(&sidecar->proxy_);
  // The malformed-request rewrite first, so the metrics count the status the caller gets.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(sidecar::MalformedRequestInterceptorFactory("callmesh.v1.Sidecar"));
  for (auto& factory : sidecar->rpc_metrics_.InterceptorFactories()) {
    interceptors.push_back(std::move(factory));
  }
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.SetMaxReceiveMessageSize(MaxRequestBytes(config));
  // What a reply can hold: a call with its request and its result, each up to the payload limit
  // (GetCall with include_payload), or a list page (bounded by kMaxListPageBytes, plus the call
  // that crossed the bound). Whatever was accepted can be read back.
  const int64_t largest_reply = 2 * static_cast<int64_t>(config.max_payload_bytes()) +
                                sidecar::kMaxListPageBytes + (64 << 10);
  builder.SetMaxSendMessageSize(
      static_cast<int>(std::min<int64_t>(largest_reply, std::numeric_limits<int>::max())));
  sidecar->server_ = builder.BuildAndStart();
  absl::StatusOr<std::string> bound =
      BoundAddress("listen", config.listen(), sidecar->server_.get(), port);
  if (!bound.ok()) return bound.status();
  sidecar->address_ = *std::move(bound);
  // The admin listener before recovery, so that /readyz answers "recovering" meanwhile.
  if (!config.admin_listen().empty()) {
    Sidecar* self = sidecar.get();
    // The web view has no login of its own: it shows every caller's calls and redrives dead
    // letters, which the Sidecar API allows only to admins once callers authenticate. So it is
    // served only while authentication is off; the metrics, /healthz and /readyz always are.
    if (!self->gatekeeper_->authenticating()) {
      sidecar->web_view_ = std::make_unique<webview::WebView>(
          webview::WebView::Sources{.store = self->journal_.get(),
                                    .registry = &self->registry_,
                                    .dispatcher = &self->dispatcher_,
                                    .deliverer = &self->deliverer_,
                                    .hub = &self->hub_,
                                    .name = config.name()});
    } else {
      spdlog::info(
          "the web view (/ui) is off: callers authenticate (security), and the web view "
          "has no login of its own; /metrics, /healthz and /readyz are served");
    }
    absl::StatusOr<std::unique_ptr<metrics::AdminServer>> admin = metrics::AdminServer::Start(
        config.admin_listen(), &self->metrics_->registry(), [self] { return self->Readiness(); },
        [self](http::HttpRouter* router) {
          if (self->web_view_ != nullptr) self->web_view_->AddRoutes(router);
        });
    if (!admin.ok()) return admin.status();
    sidecar->admin_ = *std::move(admin);
  }
  // One round of health probes before recovery, so that a call waiting for a static instance
  // that is down is parked again (as the running sidecar did) instead of spending an attempt on
  // an instance not yet known to be down. Then the periodic probes.
  sidecar->registry_.CheckHealthNow();
  sidecar->registry_.StartHealthChecks();
  if (sidecar->membership_ != nullptr) sidecar->membership_->Start();
  // Recovery: NOT_SERVING until every unfinished call is back in the dispatcher and every
  // undelivered completion queued for delivery again.
  grpc::HealthCheckServiceInterface* health = sidecar->server_->GetHealthCheckService();
  health->SetServingStatus(false);
  if (absl::Status recovered = sidecar->Recover(); !recovered.ok()) return recovered;
  if (absl::Status started = sidecar->StartPubSub(); !started.ok()) return started;
  if (sidecar->shared_subscriptions_ != nullptr) sidecar->shared_subscriptions_->Start();
  sidecar->recovered_.store(true);
  sidecar->SchedulePurge();
  sidecar->ScheduleTopicPurge();
  health->SetServingStatus(true);
  sidecar->WatchStoreHealth();
  if (sidecar->membership_ != nullptr) sidecar->WatchClusterHealth();
  return sidecar;
}

Sidecar::Sidecar(const v1::SidecarConfig& config, SidecarEnv env,
                 std::unique_ptr<metrics::SidecarMetrics> metrics,
                 std::unique_ptr<sidecar::Journal> journal,
                 std::unique_ptr<sidecar::security::Gatekeeper> gatekeeper,
                 std::shared_ptr<grpc::ChannelCredentials> outbound,
                 std::shared_ptr<grpc::ChannelCredentials> peer_outbound,
                 std::unique_ptr<sidecar::pubsub::TopicLog> topics)
    : config_(config),
      clock_(env.clock),
      metrics_(std::move(metrics)),
      rpc_metrics_(&metrics_->registry(), {"callmesh.v1.Sidecar"},
                   {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"}),
      registry_(RegistryOptions(config, env.clock, std::move(outbound), std::move(peer_outbound),
                                gatekeeper.get())),
      journal_(std::move(journal)),
      topics_(std::move(topics)),
      invoker_(&registry_, &cids_, InvokerOptions(config), clock_),
      access_log_(config.access_log_sample_rate(), *env.jitter_seed + 2),
      span_exporter_(MakeSpanExporter(config)),
      tracer_(span_exporter_ == nullptr
                  ? nullptr
                  : std::make_unique<tracing::CallTracer>(span_exporter_.get(), clock_)),
      sync_calls_(config.limits().max_sync_in_flight(), &access_log_, tracer_.get()),
      gatekeeper_(std::move(gatekeeper)),
      policies_(config),
      runner_(kWorkerThreads, clock_),
      deliverer_(journal_.get(), &invoker_, &runner_,
                 {.retry = policies_.CallbackRetry(),
                  .jitter_seed = *env.jitter_seed + 1,
                  .tracer = tracer_.get()}),
      dispatcher_(journal_.get(), &invoker_, &registry_, &policies_, &runner_,
                  {.max_pending_calls = config.limits().max_pending_calls(),
                   .jitter_seed = *env.jitter_seed,
                   .metrics = metrics_.get(),
                   .tracer = tracer_.get()},
                  [this](const v1::Completion& completion, const std::string& callback) {
                    hub_.Notify(completion);
                    if (!callback.empty()) deliverer_.Deliver(completion, callback);
                  }),
      fan_out_(topics_.get(), &invoker_, &policies_, &runner_,
               {.jitter_seed = *env.jitter_seed + 3}),
      service_({.name = config.name(),
                .gatekeeper = gatekeeper_.get(),
                .cluster_state = config.has_cluster() ? std::function<std::string()>(
                                                            [this] { return ClusterState(); })
                                                      : nullptr},
               &registry_, &invoker_, &sync_calls_,
               {.store = journal_.get(),
                .dispatcher = &dispatcher_,
                .deliverer = &deliverer_,
                .hub = &hub_,
                .runner = &runner_,
                .policies = &policies_,
                .max_payload_bytes = config.max_payload_bytes(),
                .max_watchers = config.limits().max_watchers(),
                .topics = topics_.get(),
                .fan_out = &fan_out_,
                .on_subscribed =
                    [this](const std::string& service, const v1::Subscription& subscription) {
                      if (shared_subscriptions_ != nullptr) {
                        shared_subscriptions_->Share(service, subscription);
                      }
                    },
                .on_unsubscribed =
                    [this](const std::string& topic, const std::string& service) {
                      if (shared_subscriptions_ != nullptr) {
                        shared_subscriptions_->Withdraw(topic, service);
                      }
                    }}),
      proxy_(config.name(), &invoker_, &sync_calls_, clock_, gatekeeper_.get()) {
  RegisterComputedMetrics();
}

Sidecar::~Sidecar() { Shutdown(absl::ZeroDuration()); }

void Sidecar::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  draining_.store(true);
  // Leave the cluster first: the other sidecars stop routing here at once, not after a TTL.
  if (membership_ != nullptr) membership_->Stop(/*leave=*/true);
  if (shared_subscriptions_ != nullptr) shared_subscriptions_->Stop();
  if (server_ != nullptr) {
    // The drain, on the real clock as gRPC's is: first the server keeps answering, so that health
    // checks read NOT_SERVING (not UNAVAILABLE) and new synchronous calls are refused with a
    // reason, while the calls in flight finish; then gRPC's shutdown cancels what is left at the
    // end of the grace period.
    server_->GetHealthCheckService()->SetServingStatus(false);
    sync_calls_.StartDraining();
    const absl::Time until = absl::Now() + grace;
    while (sync_calls_.in_flight() > 0 && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (peer_server_ != nullptr) peer_server_->Shutdown(absl::ToChronoTime(until));
    server_->Shutdown(absl::ToChronoTime(until));
  }
  // Calls still pending stay in the store and resume at the next start.
  dispatcher_.Stop();
  // Nothing completes any more, so nothing new is delivered: the completion streams end here,
  // while the journal is still open, and no ack or retry is handled after this (what is not
  // acknowledged stays PENDING and is delivered again at the next start).
  deliverer_.Stop();
  runner_.Stop();
  invoker_.CancelAllAndWait();
  registry_.Stop();
  if (web_view_ != nullptr) web_view_->Stop();
  if (admin_ != nullptr) admin_->Stop();
}

absl::Status Sidecar::StartCluster(const std::shared_ptr<grpc::ServerCredentials>& credentials) {
  const v1::ClusterConfig& cluster = config_.cluster();
  absl::StatusOr<std::unique_ptr<sidecar::cluster::NatsConnection>> nats =
      sidecar::cluster::NatsConnection::Open(cluster);
  if (!nats.ok()) return nats.status();
  nats_ = *std::move(nats);
  peer_proxy_ = std::make_unique<sidecar::ProxyService>(config_.name(), &invoker_, &sync_calls_,
                                                        clock_, gatekeeper_.get(),
                                                        sidecar::ProxyService::Callers::kSidecars);
  grpc::ServerBuilder builder;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  int port = 0;
  builder.AddListeningPort(cluster.peer_listen(), credentials, &port);
  builder.RegisterCallbackGenericService(peer_proxy_.get());
  // Peers ping every kPeerKeepaliveTimeMs, also between calls (registry.h).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             sidecar::kPeerKeepaliveTimeMs / 2);
  builder.SetMaxReceiveMessageSize(MaxRequestBytes(config_));
  peer_server_ = builder.BuildAndStart();
  absl::StatusOr<std::string> bound =
      BoundAddress("cluster.peer_listen", cluster.peer_listen(), peer_server_.get(), port);
  if (!bound.ok()) return bound.status();
  peer_address_ = *std::move(bound);
  membership_ = std::make_unique<sidecar::cluster::ClusterMembership>(
      sidecar::cluster::ClusterMembership::Options{.cluster = cluster,
                                                   .version = Version(),
                                                   .registry = &registry_,
                                                   .nats = nats_.get(),
                                                   .clock = clock_});
  shared_subscriptions_ = std::make_unique<sidecar::cluster::SharedSubscriptions>(
      sidecar::cluster::SharedSubscriptions::Options{.cluster = cluster,
                                                     .nats = nats_.get(),
                                                     .topics = topics_.get(),
                                                     .fan_out = &fan_out_,
                                                     .clock = clock_});
  spdlog::info("cluster: sidecar {} serves other sidecars on {} (advertised as {})",
               cluster.sidecar_id(), peer_address_, cluster.advertise_address());
  return absl::OkStatus();
}

std::string Sidecar::ClusterState() const {
  std::string state = membership_->state();
  // Without NATS the membership's state says all there is to say.
  if (std::string problem = shared_subscriptions_->problem();
      !problem.empty() && nats_->connected()) {
    absl::StrAppend(&state, "; subscriptions: ", problem);
  }
  return state;
}

void Sidecar::WatchClusterHealth() {
  const bool healthy = membership_->healthy();
  server_->GetHealthCheckService()->SetServingStatus(kClusterHealthService, healthy);
  runner_.PostAt(clock_->Now() + kStoreHealthEvery, [this] {
    if (!draining_.load()) WatchClusterHealth();
  });
}

absl::Status Sidecar::Readiness() const {
  if (draining_.load()) return absl::UnavailableError("draining (shutting down)");
  if (!recovered_.load()) return absl::UnavailableError("recovering unfinished calls");
  if (!journal_->healthy()) {
    return absl::UnavailableError("the journal cannot write; restart the sidecar");
  }
  return absl::OkStatus();
}

void Sidecar::RegisterComputedMetrics() {
  using metrics::EmitSample;
  using Type = metrics::Registry::Type;
  metrics::Registry& registry = metrics_->registry();
  const auto one = [&registry](const std::string& name, const std::string& help, Type type,
                               std::function<double()> read) {
    registry.AddComputed(name, help, type, {},
                         [read = std::move(read)](const EmitSample& emit) { emit({}, read()); });
  };
  registry.AddComputed("callmesh_sync_calls_total",
                       "Synchronous calls forwarded (Invoke and the proxy), by outcome.",
                       Type::kCounter, {"outcome"}, [this](const EmitSample& emit) {
                         emit({"ok"}, static_cast<double>(sync_calls_.ok()));
                         emit({"failed"}, static_cast<double>(sync_calls_.failed()));
                       });
  one("callmesh_sync_calls_in_flight", "Synchronous calls being forwarded now.", Type::kGauge,
      [this] { return sync_calls_.in_flight(); });
  one("callmesh_async_accepted_total", "InvokeAsync and Cast calls accepted (durable).",
      Type::kCounter, [this] { return static_cast<double>(service_.async_accepted()); });
  one("callmesh_async_rejected_total", "InvokeAsync and Cast calls refused.", Type::kCounter,
      [this] { return static_cast<double>(service_.async_rejected()); });
  one("callmesh_pending_calls", "Async calls accepted and not finished (in the journal).",
      Type::kGauge, [this] { return static_cast<double>(journal_->pending_count()); });
  one("callmesh_active_calls", "Async calls held by the dispatcher (waiting or running).",
      Type::kGauge, [this] { return static_cast<double>(dispatcher_.active()); });
  registry.AddComputed("callmesh_target_in_flight", "Attempts of async calls in flight, by target.",
                       Type::kGauge, {"service"}, [this](const EmitSample& emit) {
                         for (const auto& [service, in_flight] : dispatcher_.InFlightByTarget()) {
                           emit({service}, in_flight);
                         }
                       });
  one("callmesh_callbacks_delivered_total", "Completions delivered to their callback service.",
      Type::kCounter, [this] { return static_cast<double>(journal_->stats().deliveries); });
  one("callmesh_dead_letters", "Completions whose callback delivery gave up (dead letters).",
      Type::kGauge, [this] { return static_cast<double>(journal_->dead_letter_count()); });
  one("callmesh_watchers", "WatchCompletions streams open.", Type::kGauge,
      [this] { return service_.watchers(); });
  one("callmesh_journal_batches_total", "Batches written to the journal.", Type::kCounter,
      [this] { return static_cast<double>(journal_->stats().batches); });
  one("callmesh_journal_syncs_total", "Journal batches written with an fsync.", Type::kCounter,
      [this] { return static_cast<double>(journal_->stats().syncs); });
  one("callmesh_journal_healthy", "1 while the journal can write, 0 once it cannot.", Type::kGauge,
      [this] { return journal_->healthy() ? 1 : 0; });
  if (config_.has_cluster()) {
    one("callmesh_cluster_registry_healthy",
        "Cluster mode: 1 while this sidecar's registry entry is put and the bucket watched.",
        Type::kGauge, [this] { return membership_ != nullptr && membership_->healthy() ? 1 : 0; });
    one("callmesh_cluster_sidecars", "Cluster mode: the other sidecars this one routes to.",
        Type::kGauge, [this] { return static_cast<double>(registry_.RemoteSidecars().size()); });
  }
  registry.AddComputed("callmesh_registry_instances",
                       "Instances known to the registry, by service and health.", Type::kGauge,
                       {"service", "health"}, [this](const EmitSample& emit) {
                         for (const v1::ServiceInfo& service : registry_.List()) {
                           double healthy = 0, unhealthy = 0;
                           for (const v1::ServiceInstance& instance : service.instances()) {
                             (instance.healthy() ? healthy : unhealthy) += 1;
                           }
                           emit({service.name(), "healthy"}, healthy);
                           emit({service.name(), "unhealthy"}, unhealthy);
                         }
                       });
  if (span_exporter_ != nullptr) {
    one("callmesh_trace_spans_exported_total", "Spans the trace collector accepted.",
        Type::kCounter, [this] { return static_cast<double>(span_exporter_->exported()); });
    registry.AddComputed(
        "callmesh_trace_spans_dropped_total",
        "Spans lost: the export queue was full, or the collector failed or was away.",
        Type::kCounter, {"reason"}, [this](const EmitSample& emit) {
          emit({"queue_full"}, static_cast<double>(span_exporter_->dropped_queue_full()));
          emit({"export_failed"}, static_cast<double>(span_exporter_->dropped_export_failed()));
        });
  }
  metrics::AddProcessMetrics(&registry);
}

absl::Status Sidecar::Recover() {
  size_t resumed = 0, deliveries = 0;
  absl::Status status = journal_->ForEachUnfinished([&](const v1::Call& call) {
    if (calls::IsTerminal(call.state())) {
      deliverer_.Deliver(call.completion(), calls::CallbackOfCompleted(call));
      ++deliveries;
    } else {
      dispatcher_.Resume(call);
      ++resumed;
    }
  });
  if (!status.ok()) return status;
  if (resumed + deliveries > 0) {
    spdlog::info("callmeshd: recovered {} unfinished calls and {} undelivered completions", resumed,
                 deliveries);
  }
  return absl::OkStatus();
}

absl::Status Sidecar::StartPubSub() {
  for (int i = 0; i < config_.services_size(); ++i) {
    const v1::ServiceConfig& service = config_.services(i);
    for (int j = 0; j < service.subscriptions_size(); ++j) {
      absl::StatusOr<v1::SubscriptionInfo> made =
          topics_->Subscribe(service.name(), service.subscriptions(j));
      if (!made.ok()) {
        return absl::Status(made.status().code(), absl::StrCat("services[", i, "].subscriptions[",
                                                               j, "]: ", made.status().message()));
      }
      if (shared_subscriptions_ != nullptr) {
        shared_subscriptions_->Share(service.name(), service.subscriptions(j));
      }
    }
  }
  return fan_out_.Start();
}

void Sidecar::ScheduleTopicPurge() {
  runner_.PostAt(clock_->Now() + absl::Minutes(1), [this] {
    absl::StatusOr<size_t> purged = topics_->Purge(clock_->Now());
    if (!purged.ok()) {
      spdlog::warn("callmeshd: purging old events failed: {}", purged.status().ToString());
    } else if (*purged > 0) {
      spdlog::info("callmeshd: purged {} events past their topic's retention", *purged);
    }
    ScheduleTopicPurge();
  });
}

void Sidecar::SchedulePurge() {
  const absl::Duration retention = FromProtoDuration(config_.result_retention());
  const absl::Duration every = std::clamp(retention / 10, absl::Seconds(1), absl::Minutes(1));
  runner_.PostAt(clock_->Now() + every, [this, retention] {
    absl::StatusOr<size_t> purged = journal_->Purge(clock_->Now(), retention);
    if (!purged.ok()) {
      spdlog::warn("callmeshd: purging old results failed: {}", purged.status().ToString());
    } else if (*purged > 0) {
      spdlog::info("callmeshd: purged {} results older than {}", *purged,
                   absl::FormatDuration(retention));
    }
    if (absl::StatusOr<bool> flushed = journal_->FlushIfIdle(); !flushed.ok()) {
      spdlog::warn("callmeshd: {}", flushed.status().ToString());
    }
    SchedulePurge();
  });
}

// Once the store cannot write, no call is acknowledged any more (the store refuses with
// UNAVAILABLE) and the sidecar reports NOT_SERVING, so health checks and load balancers see it.
// A failed store stays failed until a restart, so the watch ends there.
void Sidecar::WatchStoreHealth() {
  runner_.PostAt(clock_->Now() + kStoreHealthEvery, [this] {
    if (journal_->healthy()) {
      WatchStoreHealth();
      return;
    }
    spdlog::error(
        "callmeshd: the journal cannot write; NOT_SERVING, async calls are refused until a "
        "restart");
    server_->GetHealthCheckService()->SetServingStatus(false);
  });
}

}  // namespace callmesh

// callmesh::Sidecar: the whole sidecar as a library — the gRPC server (Sidecar API, transparent
// proxy, health, reflection), the registry and its health checks, the call store (the RocksDB
// journal), the dispatcher of async calls, callback delivery, recovery at start, the purge of old
// results and the watch on the store's health. `callmeshd` is flags, signals and logging around
// it; tests start it in-process.
//
//   absl::StatusOr<v1::SidecarConfig> config = LoadAndValidateConfig(path);
//   absl::StatusOr<std::unique_ptr<Sidecar>> sidecar = Sidecar::Start(*config, SidecarEnv{});
//   if (!sidecar.ok()) return Fail(sidecar.status());  // names the address, directory or file
//   ... (*sidecar)->address() ...                        // "127.0.0.1:4770", or the port 0 got
//   (*sidecar)->Shutdown(absl::Seconds(10));             // the SIGTERM drain
//
// In tests, SidecarEnv carries a FakeClock (every deadline, back-off, timeout, purge and health
// watch of the sidecar runs on it), a fault-injecting storage environment, and a fixed jitter seed.
//
// Wiring and ownership: see ARCHITECTURE.md. Thread-safe: Shutdown may be called from any thread,
// once; the destructor shuts down with no grace if Shutdown was not called.
#pragma once

#include <grpcpp/server.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"
#include "runtime/common/cid.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/cluster/cluster_membership.h"
#include "runtime/sidecar/cluster/nats_connection.h"
#include "runtime/sidecar/cluster/shared_subscriptions.h"
#include "runtime/sidecar/delivery/callback_deliverer.h"
#include "runtime/sidecar/delivery/completion_hub.h"
#include "runtime/sidecar/dispatch/dispatcher.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/journal/journal.h"
#include "runtime/sidecar/logging/access_log.h"
#include "runtime/sidecar/metrics/admin_server.h"
#include "runtime/sidecar/metrics/rpc_metrics.h"
#include "runtime/sidecar/metrics/sidecar_metrics.h"
#include "runtime/sidecar/pubsub/event_fan_out.h"
#include "runtime/sidecar/pubsub/topic_log.h"
#include "runtime/sidecar/registry/registry.h"
#include "runtime/sidecar/security/gatekeeper.h"
#include "runtime/sidecar/server/proxy_service.h"
#include "runtime/sidecar/server/sidecar_service.h"
#include "runtime/sidecar/store/call_store.h"
#include "runtime/sidecar/tracing/call_tracer.h"
#include "runtime/sidecar/tracing/span_exporter.h"
#include "runtime/sidecar/webview/web_view.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace callmesh {

// What the sidecar takes from its surroundings: time, storage and randomness.
struct SidecarEnv {
  // Time of every call-lifecycle decision (not owned; must outlive the Sidecar).
  Clock* clock = Clock::Real();
  // RocksDB environment of the journal, e.g. one with a fault-injecting FileSystem (not owned;
  // must outlive the Sidecar). nullptr = the default POSIX environment.
  rocksdb::Env* storage = nullptr;
  // Seed of the retry back-off jitter; unset = a random one.
  std::optional<uint64_t> jitter_seed;
};

class Sidecar {
 public:
  // Starts a sidecar for `config`, which must be complete and valid (as LoadAndValidateConfig or
  // ApplyConfigDefaults + ValidateConfig leave it): creates the data directory, opens the store,
  // binds `config.listen` (port 0 picks a free port), replays unfinished calls and undelivered
  // completions (health NOT_SERVING meanwhile), then serves. Errors (nothing keeps running):
  //   FAILED_PRECONDITION "data_dir <dir>: ..." or "journal directory <dir>: ..." for an unusable
  //                       directory; "listen <address>: cannot listen there ..."; a static service
  //                       "services[i]: ..." that the registry refuses.
  //                       "admin_listen <address>: cannot listen there ..." likewise for the
  //                       admin HTTP listener (metrics, /healthz, /readyz), if configured.
  //   DATA_LOSS           a journal that does not check out (see Journal::Open).
  //   INVALID_ARGUMENT    a security file that cannot be read: "security.tokens[i].file <path>:
  //                       ..." or "security.tls.key_file <path>: ..." (and cert_file, ca_file).
  // The data directory is created 0700, and group and other permissions are removed from it and
  // its files if an older version left them (callmeshd also runs with umask 077).
  static absl::StatusOr<std::unique_ptr<Sidecar>> Start(const v1::SidecarConfig& config,
                                                        SidecarEnv env = {});

  ~Sidecar();
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  // host:port the Sidecar API is served on (the port bound when config.listen asked for 0).
  const std::string& address() const { return address_; }
  // Cluster mode: host:port of the peer listener (the port bound when cluster.peer_listen asked
  // for 0); "" otherwise.
  const std::string& peer_address() const { return peer_address_; }
  // host:port of the admin HTTP listener ("" when config.admin_listen is empty).
  std::string admin_address() const { return admin_ != nullptr ? admin_->address() : ""; }

  // The metrics the admin listener serves at /metrics.
  const metrics::Registry& metrics() const { return metrics_->registry(); }
  // Sends the spans queued so far to the trace collector now and waits for that request (no-op
  // without `tracing.endpoint`). For tests.
  void FlushTraces() {
    if (span_exporter_ != nullptr) span_exporter_->Flush();
  }
  // OK when the sidecar serves: recovered, the store can write, not draining; otherwise the
  // reason (what /readyz answers).
  absl::Status Readiness() const;

  // The SIGTERM drain: health NOT_SERVING, no new RPCs, RPCs in progress get up to `grace` (real
  // time: it bounds gRPC's drain) before they are cancelled; then the workers, timers, outbound
  // calls and health checks stop. Calls still pending stay in the store and resume at the next
  // start. Idempotent.
  void Shutdown(absl::Duration grace);

  // Synchronous calls forwarded (Invoke and the proxy), by outcome.
  uint64_t sync_calls_ok() const { return sync_calls_.ok(); }
  uint64_t sync_calls_failed() const { return sync_calls_.failed(); }

  // For tests: the store and the worker pool the sidecar runs on.
  sidecar::CallStore& store() { return *journal_; }
  sidecar::TaskRunner& runner() { return runner_; }
  sidecar::pubsub::TopicLog& topics() { return *topics_; }

 private:
  Sidecar(const v1::SidecarConfig& config, SidecarEnv env,
          std::unique_ptr<metrics::SidecarMetrics> metrics,
          std::unique_ptr<sidecar::Journal> journal,
          std::unique_ptr<sidecar::security::Gatekeeper> gatekeeper,
          std::shared_ptr<grpc::ChannelCredentials> outbound,
          std::shared_ptr<grpc::ChannelCredentials> peer_outbound,
          std::unique_ptr<sidecar::pubsub::TopicLog> topics);

  // Cluster mode: connects to NATS (degraded start when no server answers) and serves the peer
  // listener. FAILED_PRECONDITION naming cluster.peer_listen when it cannot listen there.
  absl::Status StartCluster(const std::shared_ptr<grpc::ServerCredentials>& credentials);
  // The cluster line of GetStats: the membership's state and what the subscriptions lack.
  std::string ClusterState() const;
  // Keeps the health service "callmesh.cluster" SERVING while the shared registry works.
  void WatchClusterHealth();

  // Registers the metrics read when scraped: calls, targets, store, registry, process.
  void RegisterComputedMetrics();

  // Puts every unfinished call back into the dispatcher and every undelivered completion back
  // into delivery.
  absl::Status Recover();
  // Purges delivered results older than the retention, now and then.
  void SchedulePurge();
  // Publish/subscribe at start: the configured subscriptions (ServiceConfig.subscriptions) made
  // durable, then delivery of every stored subscription from its position.
  absl::Status StartPubSub();
  // Deletes events past their topic's retention, now and then.
  void ScheduleTopicPurge();
  // Reports NOT_SERVING once the store cannot write.
  void WatchStoreHealth();

  const v1::SidecarConfig config_;
  Clock* const clock_;
  // Before the journal, which reports its batches to it.
  const std::unique_ptr<metrics::SidecarMetrics> metrics_;
  metrics::RpcMetrics rpc_metrics_;
  sidecar::Registry registry_;
  const std::unique_ptr<sidecar::Journal> journal_;
  // Shares the journal's database; before everything that delivers events.
  const std::unique_ptr<sidecar::pubsub::TopicLog> topics_;
  CidGenerator cids_;
  sidecar::Invoker invoker_;
  logging::AccessLog access_log_;
  // Spans of calls, when `tracing.endpoint` is set (else both null).
  const std::unique_ptr<tracing::SpanExporter> span_exporter_;
  const std::unique_ptr<tracing::CallTracer> tracer_;
  sidecar::SyncCalls sync_calls_;
  // Before the services, which ask it about every RPC.
  const std::unique_ptr<sidecar::security::Gatekeeper> gatekeeper_;
  const sidecar::DispatchPolicies policies_;
  sidecar::TaskRunner runner_;
  sidecar::CompletionHub hub_;
  sidecar::CallbackDeliverer deliverer_;
  sidecar::Dispatcher dispatcher_;
  sidecar::pubsub::EventFanOut fan_out_;
  sidecar::SidecarService service_;
  sidecar::ProxyService proxy_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  // Cluster mode only (else null): NATS, the shared registry, and the peer listener with its
  // proxy for calls other sidecars forward.
  std::unique_ptr<sidecar::cluster::NatsConnection> nats_;
  std::unique_ptr<sidecar::cluster::ClusterMembership> membership_;
  std::unique_ptr<sidecar::cluster::SharedSubscriptions> shared_subscriptions_;
  std::unique_ptr<sidecar::ProxyService> peer_proxy_;
  std::unique_ptr<grpc::Server> peer_server_;
  std::string peer_address_;
  std::atomic<bool> recovered_{false};
  std::atomic<bool> draining_{false};
  bool shut_down_ = false;
  // Last: stopped (and destroyed) before anything it reads.
  // Served by admin_ (declared first so that it outlives it).
  std::unique_ptr<webview::WebView> web_view_;
  std::unique_ptr<metrics::AdminServer> admin_;
};

}  // namespace callmesh

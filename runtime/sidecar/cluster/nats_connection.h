// The sidecar's one connection to the NATS cluster of ClusterConfig, with JetStream.
//
//   absl::StatusOr<std::unique_ptr<NatsConnection>> nats = NatsConnection::Open(config.cluster());
//   if (!nats.ok()) ...                    // INVALID_ARGUMENT: an unreadable token/password/TLS
//   file
//   (*nats)->connected();                  // false while no server answers
//   jsCtx* js = (*nats)->jetstream();
//
// Degraded start: Open does not wait for a server. When none answers it returns a connection that
// keeps trying in the background (every 500 ms, forever) and reports why in state(); once a server
// answers, and after every lost connection, it reconnects by itself. So a sidecar started before
// NATS (containers start in any order) or cut off from it later keeps serving its local calls, and
// joins the cluster when NATS is back. Only configuration errors fail Open.
//
// Thread-safe. natsConnection and jsCtx are thread-safe in the NATS C client.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"

namespace callmesh::sidecar::cluster {

class NatsConnection {
 public:
  static absl::StatusOr<std::unique_ptr<NatsConnection>> Open(const v1::ClusterConfig& cluster);
  // Closes the connection (pending publishes are flushed for up to a second).
  ~NatsConnection();

  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // True while connected to a server.
  bool connected() const;
  // "connected to nats://10.0.0.1:4222" or "not connected since <time>: <last error>" (to be
  // read after "NATS ").
  std::string state() const;

  natsConnection* connection() const { return connection_; }
  jsCtx* jetstream() const { return jetstream_; }

 private:
  NatsConnection() = default;
  static void OnConnected(natsConnection* connection, void* self);
  static void OnDisconnected(natsConnection* connection, void* self);
  // Errors the client reports asynchronously, e.g. the server's "Authorization Violation".
  static void OnError(natsConnection* connection, natsSubscription* subscription, natsStatus status,
                      void* self);
  void NoteConnected(bool connected);

  natsOptions* options_ = nullptr;
  natsConnection* connection_ = nullptr;
  jsCtx* jetstream_ = nullptr;
  mutable absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time since_ ABSL_GUARDED_BY(mu_) = absl::Now();
  // The last error reported while not connected, for state().
  std::string last_error_ ABSL_GUARDED_BY(mu_);
};

// "<what>: <NATS status text>", with the client's last error detail when it has one: the message
// of every status made from a NATS error.
std::string NatsError(absl::string_view what, natsStatus status);

}  // namespace callmesh::sidecar::cluster

// Hosts gRPC services as one mesh service: a server with health and reflection, registered with the
// local sidecar under a name while it runs.
//
//   GreeterService greeter;
//   callmesh::ServiceHost host({.name = "greeter", .sidecar = "127.0.0.1:4770"});
//   host.AddService(&greeter);
//   if (absl::Status s = host.Start(); !s.ok()) { ... }   // listening and registered
//   ...
//   host.Shutdown();                                       // deregistered, drained
//
// While running, the host repeats its registration every `refresh_interval`, so it is routed to
// again soon after the sidecar restarts.
//
// Callbacks: a host that makes async calls adds the generated `FooCallbacks` handlers with
// AddCallbacks; it then also serves `callmesh.v1.Callback` and registers a second mesh name,
// `<name>-async-callback` (the convention the sidecar uses when a call names no callback), at the
// same address. Each pushed completion is routed by its method to the handler of that service.
//
//   MyWorldCallbacks on_world;                      // derives from world::v1::WorldCallbacks
//   host.AddCallbacks(&on_world);                   // "hello" and "hello-async-callback"
//
// Events: a host that receives published events adds the generated `FooEventsSubscriber`
// handlers with AddSubscriber; it serves them and registers, under `name`, one durable
// subscription per topic of the event service (see event_subscriber.h). Its registration lists
// the gRPC services it serves (grpc_services), so the sidecar refuses a subscription to a method
// the host does not have.
//
//   ShipOrders shipping;                  // derives from orders::v1::OrderEventsSubscriber
//   host.AddSubscriber(&shipping, {.mode = callmesh::v1::SUBSCRIPTION_MODE_ORDERED});
//
// Not thread-safe for setup (AddService, Start); Shutdown and the accessors may be called from any
// thread once started.
#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/tls/client_credentials.h"
#include "runtime/sdk/callback_router.h"
#include "runtime/sdk/event_subscriber.h"
#include "runtime/sdk/sidecar_address.h"

namespace callmesh {

struct ServiceHostOptions {
  // Mesh name under which the sidecar routes to this host. Required.
  std::string name;
  // Where to listen; port 0 picks a free port. Loopback by default.
  std::string listen = "127.0.0.1:0";
  // Address of the local sidecar: $CALLMESH_SIDECAR, else 127.0.0.1:4770 (sidecar_address.h);
  // empty = do not register (a plain gRPC server).
  std::string sidecar = DefaultSidecarAddress();
  // How long Start waits for the sidecar to accept the registration.
  absl::Duration register_timeout = absl::Seconds(10);
  // How often the registration is repeated, so the service is known again soon after its
  // sidecar restarts (the sidecar's registry lives in memory). Zero = register once.
  absl::Duration refresh_interval = absl::Seconds(1);
  // The app's credentials towards its sidecar (default: $CALLMESH_TOKEN_FILE and
  // $CALLMESH_TLS_CA / _CERT / _KEY): they authenticate the registration, as a Mesh's calls.
  tls::ClientCredentialOptions credentials = tls::ClientCredentialsFromEnvironment();
  // What the host serves with (default: the TLS files of `credentials`). With a certificate and a
  // key (and the CA), the host serves mTLS with that certificate and accepts calls, health checks
  // and `Callback.OnCompletion` only from a sidecar of its own trust domain (a certificate with
  // spiffe://<trust domain of its own certificate>/sidecar/<any>): any other peer is refused with
  // PERMISSION_DENIED before a handler runs; a peer without a certificate fails the handshake.
  // Without a certificate: plaintext.
  tls::TlsFiles serve_tls = tls::ClientCredentialsFromEnvironment().tls;
};

class ServiceHost {
 public:
  explicit ServiceHost(ServiceHostOptions options);
  // Shuts down (with a short grace period) if still running.
  ~ServiceHost();

  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  // Adds a service (sync, async-free callback or generic). Not owned; must outlive the host.
  // Only before Start.
  void AddService(grpc::Service* service);

  // Adds a handler of pushed completions (typically a generated `FooCallbacks`). Not owned; must
  // outlive the host. Only before Start. With at least one handler, the host serves
  // `callmesh.v1.Callback` and registers as `<name>-async-callback` too.
  void AddCallbacks(CallbackHandler* handler);

  // Serves `subscriber` and subscribes `name` to each of its topics with `options` (registered
  // with the sidecar at Start, and again with every refresh; a subscription, once made, is
  // durable until Unsubscribe). Not owned; must outlive the host. Only before Start. Start fails
  // with the sidecar's error if it refuses a subscription (e.g. FAILED_PRECONDITION when `name`
  // already subscribes to the topic with another method).
  void AddSubscriber(EventSubscriber* subscriber, SubscribeOptions options = {});

  // The mesh names this host registers: `name`, plus `<name>-async-callback` with callbacks.
  std::vector<std::string> mesh_names() const;

  // Starts serving (with grpc.health.v1 SERVING and server reflection) and registers with the
  // sidecar. Errors: INVALID_ARGUMENT for a bad name or listen address, or a credential file that
  // cannot be read (or a certificate without a callmesh SPIFFE ID), UNAVAILABLE if the port
  // cannot be bound or the sidecar cannot be reached within `register_timeout` (the server is
  // stopped again then).
  absl::Status Start();

  // The bound address, "host:port" (valid after Start).
  const std::string& address() const { return address_; }
  int port() const { return port_; }

  // Deregisters from the sidecar (best effort), reports NOT_SERVING, stops accepting calls and
  // waits up to `grace` for the calls in flight. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  // Blocks until the server has shut down.
  void Wait();

 private:
  absl::Status Register();
  void RefreshLoop();
  grpc::Status SendRegistration(v1::Sidecar::Stub& stub, absl::Duration timeout,
                                bool wait_for_ready) const;
  grpc::Status SendRegistrationAs(v1::Sidecar::Stub& stub, const std::string& name,
                                  absl::Duration timeout, bool wait_for_ready) const;
  void Deregister();
  // The server credentials: plaintext, or mTLS open to this mesh's sidecars only.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials() const;

  const ServiceHostOptions options_;
  // To the sidecar, with the app's credentials (made by Start).
  std::shared_ptr<grpc::Channel> sidecar_channel_;
  std::vector<grpc::Service*> services_;
  // What every registration of `name` declares (subscriptions_), and the gRPC services the server
  // serves besides grpc.* ones (filled by Start).
  std::vector<v1::Subscription> subscriptions_;
  std::vector<std::string> grpc_services_;
  CallbackRouter callbacks_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  bool registered_ = false;
  bool stopped_ = false;
  absl::Notification stop_refresh_;
  std::thread refresher_;
};

}  // namespace callmesh

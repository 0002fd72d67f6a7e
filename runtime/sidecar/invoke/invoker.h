// Forwards one unary call, as bytes, to an instance of a target service, carrying callmesh's
// metadata (cid, source, attempt, deadline, parent cid, traceparent, application headers).
//
//   Invoker invoker(&registry, &cids, Invoker::Options{});
//   InvokeCall call{.service = "greeter", .method_path = "/greeter.v1.Greeter/SayHello"};
//   auto started = invoker.Start(std::move(call), std::move(payload),
//                                [](const grpc::Status& status, grpc::ByteBuffer* reply) {...});
//   if (!started.ok()) { /* validation or resolution error; `done` will not run */ }
//   (*started)->Cancel();  // e.g. when the caller goes away
//
// The Sidecar.Invoke RPC, the transparent proxy, the async dispatcher and callback delivery all go
// through here, so every path validates and labels calls the same way. In cluster mode an instance
// on another host is called through that host's sidecar (its peer listener), with the same method
// path and metadata plus `callmesh-target`, which names the service there. Thread-safe.
#pragma once

#include <grpcpp/client_context.h>
#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/cid.h"
#include "runtime/common/clock.h"
#include "runtime/sidecar/registry/registry.h"

namespace callmesh::sidecar {

// What to call and with which context.
struct InvokeCall {
  // Mesh name of the target service.
  std::string service;
  // Wire path "/package.Service/Method" (see callmesh::MethodPath).
  std::string method_path;
  // Correlation ID; empty = a new one is assigned by Start.
  std::string cid;
  std::string source;
  std::string parent_cid;
  // W3C trace context sent as `traceparent` and `tracestate` (already checked).
  std::string traceparent;
  std::string tracestate;
  // 1-based attempt number sent as `callmesh-attempt`.
  uint32_t attempt = 1;
  // Deadline of this attempt, on the invoker's Clock; InfiniteFuture = the invoker's default
  // timeout from now. Enforced by gRPC (on the real clock, with the time left on ours) and, when
  // the Clock is not the real one, by a timer of the Clock; either way the call ends
  // DEADLINE_EXCEEDED.
  absl::Time deadline = absl::InfiniteFuture();
  // Overall deadline of the call, sent as `callmesh-deadline`; InfiniteFuture = `deadline`.
  absl::Time call_deadline = absl::InfiniteFuture();
  // Application metadata for the target (validated with ValidateHeader).
  std::vector<std::pair<std::string, std::string>> headers;
  // Which instances may take the call: a call forwarded by another sidecar stays on this host.
  Registry::Reach reach = Registry::Reach::kAnyHost;
  // Further callmesh metadata set by the sidecar itself (e.g. callmesh-topic of an event
  // delivery): sent as given, not validated as application headers.
  std::vector<std::pair<std::string, std::string>> callmesh_metadata;
  // The payload is a message wrapping one (a callback's Completion around the target's reply):
  // it may exceed max_payload_bytes by kEnvelopeAllowanceBytes (runtime/common/message_limits.h).
  bool wraps_payload = false;
};

// An outbound call in flight. Kept alive by its completion callback until that has run.
class ForwardedCall {
 public:
  const std::string& cid() const { return cid_; }
  // Address of the instance the call went to.
  const std::string& instance_address() const { return instance_->address(); }
  // Asks gRPC to cancel the call; `done` then runs with CANCELLED (unless it already ran).
  void Cancel() { context_.TryCancel(); }

 private:
  friend class Invoker;
  // Cancels the call because its deadline passed on the Clock: `done` sees DEADLINE_EXCEEDED.
  void TimeOut() {
    timed_out_ = true;
    context_.TryCancel();
  }
  std::string cid_;
  std::atomic<bool> timed_out_{false};
  Clock::TimerId timeout_timer_ = 0;
  std::shared_ptr<Instance> instance_;
  grpc::ClientContext context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer reply_;
};

class Invoker {
 public:
  struct Options {
    // Largest request payload accepted, in bytes.
    uint64_t max_payload_bytes = 4 << 20;
    // Deadline of a call that brings none.
    absl::Duration default_timeout = absl::Seconds(30);
  };
  // Runs exactly once, on a gRPC thread, with the target's status (unchanged) and reply bytes
  // (valid only during the call; empty unless the status is OK).
  using Done = std::function<void(const grpc::Status& status, grpc::ByteBuffer* reply)>;

  // `registry`, `cids` and `clock` must outlive the invoker.
  Invoker(Registry* registry, CidGenerator* cids, Options options, Clock* clock = Clock::Real());

  // Validates the call and starts it on a healthy instance. Errors (then `done` never runs):
  // RESOURCE_EXHAUSTED for a payload over the limit, NOT_FOUND for an unknown service,
  // UNAVAILABLE when no instance is healthy, INVALID_ARGUMENT for a malformed header.
  absl::StatusOr<std::shared_ptr<ForwardedCall>> Start(InvokeCall call, grpc::ByteBuffer payload,
                                                       Done done);

  // Cancels every call in flight (their `done` runs with CANCELLED) and waits until each `done`
  // has returned. For shutdown, once nothing starts new calls: afterwards no callback of this
  // invoker runs any more, so what the callbacks reach may be destroyed.
  void CancelAllAndWait();

  // The instance that a call to `service` would go to now (the registry's Pick; errors as
  // Start's), for callers that keep a stream of their own to it (callback delivery).
  absl::StatusOr<std::shared_ptr<Instance>> PickInstance(
      const std::string& service, Registry::Reach reach = Registry::Reach::kAnyHost) {
    return registry_->Pick(service, reach);
  }

  // A fresh CID, for callers that must announce it before the call starts.
  std::string NextCid() { return cids_->Next(); }

  const Options& options() const { return options_; }

 private:
  Registry* const registry_;
  CidGenerator* const cids_;
  const Options options_;
  Clock* const clock_;
  // Calls whose `done` has not returned yet; shared with their callbacks, which may finish after
  // CancelAllAndWait has returned and the invoker is gone.
  struct InFlight {
    absl::Mutex mu;
    std::map<ForwardedCall*, std::weak_ptr<ForwardedCall>> calls ABSL_GUARDED_BY(mu);
  };
  const std::shared_ptr<InFlight> in_flight_ = std::make_shared<InFlight>();
};

// Checks that an application header can travel as gRPC metadata and does not impersonate
// callmesh's or gRPC's own: key of [a-z0-9-_.], not starting with "grpc-" or "callmesh-", value of
// printable ASCII (or any bytes if the key ends in "-bin"). INVALID_ARGUMENT naming the header.
absl::Status ValidateHeader(const std::string& key, const std::string& value);

// RESOURCE_EXHAUSTED "payload of N bytes exceeds max_payload_bytes (M)" when `payload_bytes` is
// over `max_payload_bytes`: the one limit of sync calls, durable calls and published events.
absl::Status CheckPayloadSize(size_t payload_bytes, uint64_t max_payload_bytes);
// The same for a message that wraps a payload (a Completion around a reply), which may be
// kEnvelopeAllowanceBytes over: RESOURCE_EXHAUSTED "message of N bytes exceeds max_payload_bytes
// (M) plus 65536 bytes for its envelope".
absl::Status CheckWrappedPayloadSize(size_t message_bytes, uint64_t max_payload_bytes);

// The metadata keys a caller's request carries that are gRPC's or callmesh's own and are never
// forwarded as application headers.
bool IsReservedMetadataKey(absl::string_view key);

}  // namespace callmesh::sidecar

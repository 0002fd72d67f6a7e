// Typed event subscribers: what a ServiceHost needs to serve and subscribe the `FooSubscriber`
// classes that protoc-gen-callmesh generates for an event service (a service whose name ends in
// `Events`; see tools/protoc-gen-callmesh/generator.h), and what their handlers learn about the
// event they receive.
//
//   class ShipOrders : public orders::v1::OrderEventsSubscriber {
//     absl::Status OnOrderPlaced(const callmesh::EventContext& context,
//                                const orders::v1::OrderPlaced& event) override {
//       // context.topic(), context.sequence(), context.event_id(), context.publisher()
//       return absl::OkStatus();   // acknowledges; an error is retried, then dead-lettered
//     }
//   };
//   ShipOrders shipping;
//   host.AddSubscriber(&shipping, {.mode = callmesh::v1::SUBSCRIPTION_MODE_ORDERED});
//
// Thread-safety: handlers are called concurrently by gRPC threads (in ORDERED mode the sidecar
// sends one event at a time per subscribing service, across all its instances).
#pragma once

#include <grpcpp/impl/codegen/service_type.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/sdk/context.h"

namespace callmesh {

// The delivery of one event to a subscriber: the call context (its CID is the event ID, its
// source the publisher, its attempt the delivery attempt) plus the event's topic and sequence.
class EventContext {
 public:
  // Reads the metadata the sidecar attached to an event delivery (callmesh-topic,
  // callmesh-sequence, and what Context::From reads). Missing values are empty (sequence 0).
  static EventContext From(const grpc::ServerContextBase& server_context);

  // The event's ID, shared by every subscriber's copy (the call's CID).
  const std::string& event_id() const { return call_.cid(); }
  // Mesh name of the publisher (PublishRequest.source, or the caller's identity under security).
  const std::string& publisher() const { return call_.source(); }
  const std::string& topic() const { return topic_; }
  // Position of the event in its topic.
  uint64_t sequence() const { return sequence_; }
  // 1 on the first delivery, higher on retries (delivery is at least once).
  uint32_t attempt() const { return call_.attempt(); }
  // The event's headers (PublishRequest.headers) and the rest of the call context; pass it as
  // `parent` of calls made while handling the event.
  const Context& call() const { return call_; }

 private:
  Context call_;
  std::string topic_;
  uint64_t sequence_ = 0;
};

// One topic a subscriber receives, and the method ("package.Service/Method") it is delivered to.
struct EventTopic {
  std::string topic;
  std::string method;
};

// How a ServiceHost subscribes a subscriber (every topic of it alike).
struct SubscribeOptions {
  // PARALLEL (default) or ORDERED (one event in flight per subscribing service: topic order).
  v1::SubscriptionMode mode = v1::SUBSCRIPTION_MODE_PARALLEL;
  // Where a NEW subscription starts (ignored when it already exists): events published after it
  // was made (default), all retained ones, from `start_sequence`, or from `start_time`.
  v1::SubscriptionStart start = v1::SUBSCRIPTION_START_NEW;
  uint64_t start_sequence = 0;
  absl::Time start_time = absl::UnixEpoch();
};

// Implemented by the generated `FooSubscriber` classes.
class EventSubscriber {
 public:
  virtual ~EventSubscriber() = default;
  // The gRPC service that receives the deliveries (the subscriber itself).
  virtual grpc::Service* callmesh_service() = 0;
  // Its full name, "package.FooEvents".
  virtual const char* callmesh_grpc_service() const = 0;
  // Every topic of the event service, with its method.
  virtual std::vector<EventTopic> callmesh_topics() const = 0;
};

// The gRPC status a handler's result is answered with (OK acknowledges the event).
grpc::Status ToEventReply(const absl::Status& handled);

}  // namespace callmesh

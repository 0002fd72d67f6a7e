// EventFanOut: delivers the events of the TopicLog to every subscription — one instance of each
// subscribing service per event (instances compete through the registry's round-robin pick,
// services fan out), at least once, through the same Invoker, retry policies
// (DispatchPolicies::Retry of the subscribing service and method) and retry rule
// (calls::DecideAfterAttempt) as the dispatcher's async calls.
//
//   EventFanOut fan_out(&log, &invoker, &policies, &runner, {.jitter_seed = 7});
//   fan_out.Start();                 // every stored subscription, from its stored position
//   ... log.Publish(..., [&](auto r) { if (r.ok()) fan_out.Published(topic); });
//
// Per subscription a cursor: the acknowledged position (every event at or below it is
// acknowledged or dead-lettered; persisted with TopicLog::Advance), the next sequence to start,
// and the events in flight: at most DispatchPolicies::MaxInFlight(service) for PARALLEL, one for
// ORDERED (the next event starts only after the previous one is acknowledged or dead-lettered,
// so retries never reorder). The delivery of an event is a unary call of the subscription's
// method with the payload as the request and metadata callmesh-cid = event_id, callmesh-source =
// publisher, callmesh-attempt, callmesh-topic, callmesh-sequence and the event's headers. While
// the service has no healthy instance, the event waits (checked every 250 ms of the Clock)
// without using up attempts. After the last attempt the event becomes a dead letter of kind
// EVENT and the cursor moves on.
//
// After a crash, delivery resumes from the persisted position: events acknowledged after the
// last persisted position are delivered again (at least once, same event_id).
//
// Thread-safe. Work runs on the TaskRunner; blocking store writes happen there.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/common/metadata.h"
#include "runtime/sidecar/dispatch/retry_policy.h"
#include "runtime/sidecar/dispatch/task_runner.h"
#include "runtime/sidecar/invoke/invoker.h"
#include "runtime/sidecar/pubsub/topic_log.h"

namespace callmesh::sidecar::pubsub {

class EventFanOut {
 public:
  struct Options {
    // Seed of the back-off jitter.
    uint64_t jitter_seed = 0;
  };
  // Every pointer must outlive the fan-out.
  EventFanOut(TopicLog* log, Invoker* invoker, const DispatchPolicies* policies, TaskRunner* runner,
              Options options);

  // Starts delivery of every subscription in the log, and resumes redrives that a crash
  // interrupted. Call once, at start.
  absl::Status Start();

  // A publish of `topic` became durable: deliver it.
  void Published(const std::string& topic);
  // A subscription was created or changed (mode): deliver from its position.
  void Subscribed(const v1::SubscriptionInfo& subscription);
  // The subscription's position was moved (TopicLog::Replay): forget what is in flight (those
  // deliveries finish but count for nothing; for an ORDERED subscription one of them may still
  // be in flight while the replay's first event starts) and deliver from the new position.
  void Replayed(const std::string& topic, const std::string& service, uint64_t position);
  // The subscription is gone: stop delivering it.
  void Unsubscribed(const std::string& topic, const std::string& service);

  // Delivers a dead-lettered event again to its subscriber only, with a fresh retry budget. The
  // dead letter is marked redriving (and stays listed) until the delivery is acknowledged, when it
  // is deleted; if it fails again it is dead-lettered again. NOT_FOUND for an unknown dead letter;
  // FAILED_PRECONDITION if a redrive of it is already running. Blocks for a store write.
  absl::Status Redrive(const std::string& topic, const std::string& service, uint64_t sequence);

  // Events being delivered for a subscription now.
  uint32_t InFlight(const std::string& topic, const std::string& service) const;
  // Deliveries acknowledged (OK) since start, redrives included.
  uint64_t delivered() const { return delivered_.load(); }

 private:
  struct Cursor {
    std::string topic, service, method;
    v1::SubscriptionMode mode = v1::SUBSCRIPTION_MODE_PARALLEL;
    // Changes at every replay; a delivery of another generation counts for nothing.
    uint64_t generation = 0;
    uint64_t acked = 0;
    uint64_t next = 1;
    std::set<uint64_t> in_flight;
    std::set<uint64_t> done;  // finished, above `acked`
  };
  // One delivery of one event to one subscriber.
  struct Delivery {
    std::string key;  // cursor key
    std::string topic, service, method;
    uint64_t generation = 0;
    uint64_t sequence = 0;
    uint32_t attempt = 1;
    bool redrive = false;
    std::shared_ptr<const v1::Event> event;  // read at the first attempt
  };

  static std::string KeyOf(const std::string& topic, const std::string& service);
  // Starts deliveries of the cursor while it has room and events.
  void Pump(const std::string& key);
  void Attempt(Delivery delivery);
  void AttemptDone(Delivery delivery, const grpc::Status& status);
  // The event is acknowledged or dead-lettered: advance the cursor.
  void Handled(const Delivery& delivery);
  // Whether `delivery` still belongs to its cursor's current generation.
  bool Current(const Delivery& delivery) const;
  double Draw();

  TopicLog* const log_;
  Invoker* const invoker_;
  const DispatchPolicies* const policies_;
  TaskRunner* const runner_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  std::map<std::string, Cursor> cursors_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
  // Last generation handed to a cursor (see Cursor::generation).
  uint64_t generations_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> delivered_{0};
};

}  // namespace callmesh::sidecar::pubsub

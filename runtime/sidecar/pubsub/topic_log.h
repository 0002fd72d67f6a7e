// TopicLog: the durable side of publish/subscribe on the embedded journal — every topic's events
// in sequence order, the durable subscriptions with their positions, publish idempotency keys and
// the dead letters of kind EVENT. It shares the Journal's RocksDB and group commit
// (Journal::SubmitShared), so a publish is acknowledged after the same fsync that acknowledges
// InvokeAsync calls written at the same moment. Key layout: journal_keys.h.
//
//   auto log = TopicLog::Open(&journal, {.clock = [&] { return clock.Now(); }});
//   (*log)->Publish(std::move(event), "order-17",
//                   [](absl::StatusOr<TopicLog::PublishResult> r) { reactor->Finish(...); });
//   absl::StatusOr<v1::SubscriptionInfo> sub = (*log)->Subscribe("billing", subscription);
//   std::optional<v1::Event> next = (*log)->ReadEvent("orders", sub->position() + 1);
//   (*log)->Advance("orders", "billing", sequence);  // acknowledged through `sequence`
//
// Ordering and "published ⇒ delivered". Sequences are assigned on the journal's writer thread, in
// the order mutations are applied, so a subscription made before a publish (in that order) is
// always at a position below the event's sequence and a later one above it. Readers only see an
// event (last_sequence, ReadEvent) once its batch is written: nothing is delivered that a crash
// could un-publish.
//
// Retention. An event is kept while any subscription's position is below it (it is owed); once
// every subscription is past it, it is deleted when older than the topic's max_age (Purge) or
// earlier when a publish needs room under max_bytes. Owed events are never dropped: a publish
// that does not fit answers RESOURCE_EXHAUSTED.
//
// Durability. Publish, Subscribe, Unsubscribe and Replay are durable writes (they wait for the
// fsync); Advance, the dead-letter writes and Purge are bookkeeping writes (a crash of the process
// keeps them, power loss may lose the last ones, which only means redelivery: at least once).
//
// Memory: per retained event 24 bytes (sequence, size, time) for the retention accounting;
// payloads stay on disk. Thread-safe; the blocking methods must not be called from a `done`
// callback (the journal's writer thread).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"
#include "callmesh/v1/sidecar.pb.h"
#include "runtime/sidecar/journal/journal.h"

namespace callmesh::sidecar::pubsub {

struct TopicRetention {
  uint64_t max_bytes = uint64_t{1} << 30;
  absl::Duration max_age = absl::Hours(24 * 7);
};

class TopicLog {
 public:
  struct Options {
    // Time of published_at, created_at and the age of events. Required.
    std::function<absl::Time()> clock;
    // Retention per topic (SidecarConfig.topics); others get `defaults`.
    std::map<std::string, TopicRetention, std::less<>> topics;
    TopicRetention defaults;
  };
  // Loads the topics, subscriptions and dead letters stored in `journal` (not owned; must
  // outlive the log). DATA_LOSS naming the key for a record that does not parse.
  static absl::StatusOr<std::unique_ptr<TopicLog>> Open(Journal* journal, Options options);
  // Waits for the writes it submitted to the journal to finish.
  ~TopicLog();
  TopicLog(const TopicLog&) = delete;
  TopicLog& operator=(const TopicLog&) = delete;

  struct PublishResult {
    std::string event_id;
    uint64_t sequence = 0;
    // Subscriptions of the topic when the event was published.
    uint32_t subscribers = 0;
    bool deduplicated = false;
  };
  // Appends `event` (topic, event_id, payload, headers, source set by the caller; sequence and
  // published_at assigned here) to its topic. If `idempotency_key` is non-empty and the publisher
  // (event.source) already used it, nothing is written and the first event's id and sequence come
  // back with deduplicated = true. `done` runs once, on the writer thread, after the event is
  // durable or refused: RESOURCE_EXHAUSTED "topic <t> is full: ..." when owed events fill its
  // max_bytes; UNAVAILABLE when the journal cannot write.
  void Publish(v1::Event event, std::string idempotency_key,
               std::function<void(absl::StatusOr<PublishResult>)> done);

  // Creates the subscription of `service` to `subscription.topic` (durable), starting as
  // subscription.start says, and returns it; an existing one with the same method is returned
  // unchanged (its mode updated). FAILED_PRECONDITION when the service already subscribes to
  // the topic with another method. Blocks.
  absl::StatusOr<v1::SubscriptionInfo> Subscribe(const std::string& service,
                                                 const v1::Subscription& subscription);
  // Deletes the subscription (durable). NOT_FOUND if it does not exist. Blocks.
  absl::Status Unsubscribe(const std::string& topic, const std::string& service);

  struct ReplayResult {
    uint64_t next_sequence = 0;
    uint64_t first_available_sequence = 0;
  };
  // Sets the position so that `from_sequence` (raised to the first retained event) is delivered
  // next (durable). NOT_FOUND for an unknown subscription. Blocks.
  absl::StatusOr<ReplayResult> Replay(const std::string& topic, const std::string& service,
                                      uint64_t from_sequence);
  // The sequence of the first retained event published at or after `time` (last_sequence + 1 when
  // none). Reads the disk.
  absl::StatusOr<uint64_t> SequenceAt(const std::string& topic, absl::Time time) const;

  // Records that `service` has handled every event of `topic` up to `position` (bookkeeping
  // write, not waited for). Ignored for an unknown subscription or a position not ahead.
  void Advance(const std::string& topic, const std::string& service, uint64_t position);

  // The event, nullopt if it is not retained (or not yet durable).
  absl::StatusOr<std::optional<v1::Event>> ReadEvent(const std::string& topic,
                                                     uint64_t sequence) const;
  // Highest durable sequence of `topic` (0 if none).
  uint64_t last_sequence(const std::string& topic) const;

  // Every subscription, lag filled in (in_flight and dead_letters left to the caller).
  std::vector<v1::SubscriptionInfo> Subscriptions() const;
  // Every topic with its subscriptions.
  std::vector<v1::TopicInfo> Topics() const;

  // Dead letters of kind EVENT. Put stores (or replaces) one (bookkeeping write, waits).
  absl::Status PutDeadLetter(const v1::EventDeadLetter& dead_letter);
  absl::Status DeleteDeadLetter(const std::string& topic, const std::string& service,
                                uint64_t sequence);
  absl::StatusOr<v1::EventDeadLetter> GetDeadLetter(const std::string& topic,
                                                    const std::string& service,
                                                    uint64_t sequence) const;
  // Filtered by topic and/or subscriber ("" = any), in key order.
  absl::StatusOr<std::vector<v1::EventDeadLetter>> ListDeadLetters(
      const std::string& topic, const std::string& subscriber) const;
  size_t dead_letter_count() const;

  // Deletes events every subscription is past that are older than their topic's max_age.
  // Returns how many were deleted. Blocks.
  absl::StatusOr<size_t> Purge(absl::Time now);

  uint64_t events_published() const;

 private:
  struct Held {
    uint64_t sequence;
    uint64_t bytes;
    absl::Time published_at;
  };
  struct Topic {
    uint64_t assigned = 0;  // highest sequence handed out (writer thread)
    uint64_t durable = 0;   // highest sequence written
    std::deque<Held> held;  // retained events, in order (including not yet durable ones)
    uint64_t bytes = 0;
    std::map<std::string, v1::SubscriptionInfo, std::less<>> subscriptions;
  };

  TopicLog(Journal* journal, Options options);
  absl::Status Load();
  TopicRetention RetentionOf(absl::string_view topic) const;
  Topic& TopicNamed(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Events of `topic` up to here are owed to no subscription.
  uint64_t ConsumedThrough(const Topic& topic) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Bytes of the oldest held events that no subscription is owed (sequence <= `consumed`),
  // counted only until they reach `enough`: a publish scans as many events as it drops, not every
  // retained one (a topic keeps delivered events for max_age, so that list only grows).
  static uint64_t FreeableBytes(const Topic& topic, uint64_t consumed, uint64_t enough);
  // Journal::SubmitShared, counted in outstanding_.
  void Submit(std::function<absl::Status(Journal::SharedBatch&)> apply, size_t bytes, bool sync,
              std::function<void(absl::Status)> finish);
  // Submits and waits.
  absl::Status Write(std::function<absl::Status(Journal::SharedBatch&)> apply, bool sync);
  // Deletes the oldest held event of `topic` in `batch` (with its idempotency key).
  absl::Status DropOldest(const std::string& name, Topic& topic, Journal::SharedBatch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Journal* const journal_;
  const Options options_;

  mutable absl::Mutex mu_;
  std::map<std::string, Topic, std::less<>> topics_ ABSL_GUARDED_BY(mu_);
  size_t dead_letters_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t published_ ABSL_GUARDED_BY(mu_) = 0;
  // Writes submitted to the journal and not finished.
  size_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
};

// TopicLog::Options from the config: retention of SidecarConfig.topics, the clock.
TopicLog::Options TopicLogOptionsFromConfig(const v1::SidecarConfig& config,
                                            std::function<absl::Time()> clock);

}  // namespace callmesh::sidecar::pubsub

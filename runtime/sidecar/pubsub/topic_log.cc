#include "runtime/sidecar/pubsub/topic_log.h"

#include <algorithm>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/db.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/status_macros.h"
#include "runtime/sidecar/journal/journal_keys.h"
#include "runtime/sidecar/journal/journal_records.h"

namespace callmesh::sidecar::pubsub {
namespace {

namespace keys = journal_keys;
using journal_records::BadRecord;
using journal_records::PrefixIterator;
using journal_records::ReadError;
using journal_records::ToSlice;

// Purge deletes in mutations of at most this many events.
constexpr size_t kPurgeChunk = 256;

std::string EventPrefix(absl::string_view topic) {
  return absl::StrCat(keys::kEventPrefix, topic, "/");
}
std::string EventKey(absl::string_view topic, uint64_t sequence) {
  return absl::StrCat(EventPrefix(topic), keys::EncodeUint64(sequence));
}
std::string TopicSequenceKey(absl::string_view topic) {
  return absl::StrCat(keys::kTopicSequencePrefix, topic);
}
std::string SubscriptionKey(absl::string_view topic, absl::string_view service) {
  return absl::StrCat(keys::kSubscriptionPrefix, topic, "/", service);
}
std::string PublishKey(absl::string_view source, absl::string_view idempotency_key) {
  return absl::StrCat(keys::kPublishKeyPrefix, source.size(), "/", source, idempotency_key);
}
std::string DeadLetterKey(absl::string_view topic, absl::string_view service, uint64_t sequence) {
  return absl::StrCat(keys::kEventDeadLetterPrefix, topic, "/", service, "/",
                      keys::EncodeUint64(sequence));
}

template <typename Message>
absl::StatusOr<Message> Parse(const std::string& dir, absl::string_view key,
                              const std::string& bytes) {
  Message message;
  if (!message.ParseFromString(bytes)) return BadRecord(dir, key, "does not parse");
  return message;
}

// What the idempotency key of a publish maps to: the first event, without its payload.
v1::Event Stub(const v1::Event& event) {
  v1::Event stub;
  stub.set_topic(event.topic());
  stub.set_sequence(event.sequence());
  stub.set_event_id(event.event_id());
  return stub;
}

}  // namespace

TopicLog::Options TopicLogOptionsFromConfig(const v1::SidecarConfig& config,
                                            std::function<absl::Time()> clock) {
  TopicLog::Options options;
  options.clock = std::move(clock);
  for (const v1::TopicConfig& topic : config.topics()) {
    TopicRetention retention;
    if (topic.max_bytes() > 0) retention.max_bytes = topic.max_bytes();
    const absl::Duration max_age = FromProtoDuration(topic.max_age());
    if (max_age > absl::ZeroDuration()) retention.max_age = max_age;
    options.topics[topic.name()] = retention;
  }
  return options;
}

TopicLog::TopicLog(Journal* journal, Options options)
    : journal_(journal), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<TopicLog>> TopicLog::Open(Journal* journal, Options options) {
  std::unique_ptr<TopicLog> log(new TopicLog(journal, std::move(options)));
  CALLMESH_RETURN_IF_ERROR(log->Load());
  return log;
}

absl::Status TopicLog::Load() {
  rocksdb::DB* db = journal_->shared_db();
  const std::string& dir = journal_->dir();
  absl::MutexLock lock(&mu_);
  {
    PrefixIterator it(db, keys::kTopicSequencePrefix, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      uint64_t last = 0;
      if (!keys::DecodeUint64(it->value().ToString(), &last)) {
        return BadRecord(dir, it->key().ToString(), "is not a decimal number");
      }
      Topic& topic = TopicNamed(std::string(it.suffix()));
      topic.assigned = topic.durable = last;
    }
    if (!it->status().ok()) return ReadError(dir, keys::kTopicSequencePrefix, it->status());
  }
  {
    PrefixIterator it(db, keys::kEventPrefix, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      CALLMESH_ASSIGN_OR_RETURN(v1::Event event,
                                Parse<v1::Event>(dir, key, it->value().ToString()));
      if (key != EventKey(event.topic(), event.sequence())) {
        return BadRecord(dir, key, "holds an event of another key");
      }
      Topic& topic = TopicNamed(event.topic());
      topic.held.push_back(
          {event.sequence(), it->value().size(), FromProtoTimestamp(event.published_at())});
      topic.bytes += it->value().size();
      topic.assigned = topic.durable = std::max(topic.durable, event.sequence());
    }
    if (!it->status().ok()) return ReadError(dir, keys::kEventPrefix, it->status());
  }
  {
    PrefixIterator it(db, keys::kSubscriptionPrefix, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const std::string key = it->key().ToString();
      CALLMESH_ASSIGN_OR_RETURN(v1::SubscriptionInfo info,
                                Parse<v1::SubscriptionInfo>(dir, key, it->value().ToString()));
      if (key != SubscriptionKey(info.topic(), info.service())) {
        return BadRecord(dir, key, "holds a subscription of another key");
      }
      TopicNamed(info.topic()).subscriptions[info.service()] = info;
    }
    if (!it->status().ok()) return ReadError(dir, keys::kSubscriptionPrefix, it->status());
  }
  {
    PrefixIterator it(db, keys::kEventDeadLetterPrefix, nullptr);
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++dead_letters_;
    if (!it->status().ok()) return ReadError(dir, keys::kEventDeadLetterPrefix, it->status());
  }
  for (const auto& [name, topic] : options_.topics) TopicNamed(name);
  return absl::OkStatus();
}

TopicRetention TopicLog::RetentionOf(absl::string_view topic) const {
  auto it = options_.topics.find(topic);
  return it == options_.topics.end() ? options_.defaults : it->second;
}

TopicLog::Topic& TopicLog::TopicNamed(const std::string& name) { return topics_[name]; }

uint64_t TopicLog::ConsumedThrough(const Topic& topic) const {
  uint64_t consumed = topic.durable;
  for (const auto& [service, info] : topic.subscriptions) {
    consumed = std::min<uint64_t>(consumed, info.position());
  }
  return consumed;
}

uint64_t TopicLog::FreeableBytes(const Topic& topic, uint64_t consumed, uint64_t enough) {
  uint64_t freeable = 0;
  for (const Held& held : topic.held) {
    if (freeable >= enough || held.sequence > consumed) break;
    freeable += held.bytes;
  }
  return freeable;
}

TopicLog::~TopicLog() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](size_t* outstanding) { return *outstanding == 0; }, &outstanding_));
}

void TopicLog::Submit(std::function<absl::Status(Journal::SharedBatch&)> apply, size_t bytes,
                      bool sync, std::function<void(absl::Status)> finish) {
  {
    absl::MutexLock lock(&mu_);
    ++outstanding_;
  }
  journal_->SubmitShared(std::move(apply), bytes, sync,
                         [this, finish = std::move(finish)](absl::Status status) {
                           finish(std::move(status));
                           absl::MutexLock lock(&mu_);
                           --outstanding_;
                         });
}

absl::Status TopicLog::Write(std::function<absl::Status(Journal::SharedBatch&)> apply, bool sync) {
  absl::Notification written;
  absl::Status result;
  Submit(std::move(apply), 512, sync, [&](absl::Status status) {
    result = std::move(status);
    written.Notify();
  });
  written.WaitForNotification();
  return result;
}

absl::Status TopicLog::DropOldest(const std::string& name, Topic& topic,
                                  Journal::SharedBatch& batch) {
  const Held oldest = topic.held.front();
  const std::string key = EventKey(name, oldest.sequence);
  CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> bytes, batch.Get(key));
  if (bytes.has_value()) {
    CALLMESH_ASSIGN_OR_RETURN(v1::Event event, Parse<v1::Event>(journal_->dir(), key, *bytes));
    if (!event.idempotency_key().empty()) {
      const std::string publish_key = PublishKey(event.source(), event.idempotency_key());
      CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> stub, batch.Get(publish_key));
      v1::Event first;
      if (stub.has_value() && first.ParseFromString(*stub) &&
          first.event_id() == event.event_id()) {
        batch.Delete(publish_key);
      }
    }
    batch.Delete(key);
  }
  topic.bytes -= oldest.bytes;
  topic.held.pop_front();
  return absl::OkStatus();
}

void TopicLog::Publish(v1::Event event, std::string idempotency_key,
                       std::function<void(absl::StatusOr<PublishResult>)> done) {
  auto result = std::make_shared<PublishResult>();
  const std::string topic_name = event.topic();
  const size_t size = event.ByteSizeLong() + idempotency_key.size() + 64;
  Submit(
      [this, event = std::move(event), idempotency_key = std::move(idempotency_key),
       result](Journal::SharedBatch& batch) mutable -> absl::Status {
        std::string publish_key;
        if (!idempotency_key.empty()) {
          publish_key = PublishKey(event.source(), idempotency_key);
          CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> stub, batch.Get(publish_key));
          if (stub.has_value()) {
            CALLMESH_ASSIGN_OR_RETURN(v1::Event first,
                                      Parse<v1::Event>(journal_->dir(), publish_key, *stub));
            result->event_id = first.event_id();
            result->sequence = first.sequence();
            result->deduplicated = true;
            return absl::OkStatus();
          }
          event.set_idempotency_key(idempotency_key);
        }
        *event.mutable_published_at() = ToProtoTimestamp(options_.clock());
        absl::MutexLock lock(&mu_);
        Topic& topic = TopicNamed(event.topic());
        event.set_sequence(topic.assigned + 1);
        const std::string value = event.SerializeAsString();
        const TopicRetention retention = RetentionOf(event.topic());
        // Room under max_bytes: only events no subscription is owed may go.
        if (const uint64_t after = topic.bytes + value.size(); after > retention.max_bytes) {
          const uint64_t excess = after - retention.max_bytes;
          const uint64_t consumed = ConsumedThrough(topic);
          if (FreeableBytes(topic, consumed, excess) < excess) {
            const uint64_t owed =
                topic.bytes - FreeableBytes(topic, consumed, std::numeric_limits<uint64_t>::max());
            return absl::ResourceExhaustedError(
                absl::StrCat("topic ", event.topic(), " is full: ", owed,
                             " bytes of events not yet delivered to every subscription, max_bytes ",
                             retention.max_bytes, "; publish again once subscribers catch up"));
          }
          while (topic.bytes + value.size() > retention.max_bytes) {
            CALLMESH_RETURN_IF_ERROR(DropOldest(event.topic(), topic, batch));
          }
        }
        topic.assigned = event.sequence();
        batch.Put(EventKey(event.topic(), event.sequence()), value);
        batch.Put(TopicSequenceKey(event.topic()), keys::EncodeUint64(event.sequence()));
        if (!publish_key.empty()) batch.Put(publish_key, Stub(event).SerializeAsString());
        topic.held.push_back(
            {event.sequence(), value.size(), FromProtoTimestamp(event.published_at())});
        topic.bytes += value.size();
        result->event_id = event.event_id();
        result->sequence = event.sequence();
        result->subscribers = static_cast<uint32_t>(topic.subscriptions.size());
        return absl::OkStatus();
      },
      size, /*sync=*/true,
      [this, topic_name, result, done = std::move(done)](absl::Status status) {
        if (!status.ok()) {
          done(status);
          return;
        }
        if (!result->deduplicated) {
          absl::MutexLock lock(&mu_);
          Topic& topic = TopicNamed(topic_name);
          topic.durable = std::max(topic.durable, result->sequence);
          ++published_;
        }
        done(*result);
      });
}

absl::StatusOr<v1::SubscriptionInfo> TopicLog::Subscribe(const std::string& service,
                                                         const v1::Subscription& subscription) {
  const std::string& name = subscription.topic();
  std::optional<uint64_t> from;
  switch (subscription.start()) {
    case v1::SUBSCRIPTION_START_ALL:
      from = 1;
      break;
    case v1::SUBSCRIPTION_START_SEQUENCE:
      from = std::max<uint64_t>(subscription.start_sequence(), 1);
      break;
    case v1::SUBSCRIPTION_START_TIME: {
      CALLMESH_ASSIGN_OR_RETURN(from,
                                SequenceAt(name, FromProtoTimestamp(subscription.start_time())));
      break;
    }
    default:
      break;
  }
  v1::SubscriptionInfo result;
  CALLMESH_RETURN_IF_ERROR(Write(
      [&](Journal::SharedBatch& batch) -> absl::Status {
        absl::MutexLock lock(&mu_);
        Topic& topic = TopicNamed(name);
        auto existing = topic.subscriptions.find(service);
        if (existing != topic.subscriptions.end()) {
          if (existing->second.method() != subscription.method()) {
            return absl::FailedPreconditionError(
                absl::StrCat("service ", service, " already subscribes to topic ", name,
                             " with method ", existing->second.method(),
                             " (one subscription per service and topic; "
                             "Unsubscribe first)"));
          }
          existing->second.set_mode(subscription.mode());
          batch.Put(SubscriptionKey(name, service), existing->second.SerializeAsString());
          result = existing->second;
          return absl::OkStatus();
        }
        v1::SubscriptionInfo info;
        info.set_topic(name);
        info.set_service(service);
        info.set_method(subscription.method());
        info.set_mode(subscription.mode());
        *info.mutable_created_at() = ToProtoTimestamp(options_.clock());
        uint64_t position = topic.assigned;
        if (from.has_value()) {
          const uint64_t first =
              topic.held.empty() ? topic.assigned + 1 : topic.held.front().sequence;
          position = std::min(std::max(*from, first) - 1, topic.assigned);
        }
        info.set_position(position);
        batch.Put(SubscriptionKey(name, service), info.SerializeAsString());
        topic.subscriptions[service] = info;
        result = info;
        return absl::OkStatus();
      },
      /*sync=*/true));
  return result;
}

absl::Status TopicLog::Unsubscribe(const std::string& topic_name, const std::string& service) {
  return Write(
      [&](Journal::SharedBatch& batch) -> absl::Status {
        absl::MutexLock lock(&mu_);
        auto topic = topics_.find(topic_name);
        if (topic == topics_.end() || topic->second.subscriptions.erase(service) == 0) {
          return absl::NotFoundError(
              absl::StrCat("service ", service, " has no subscription to topic ", topic_name));
        }
        batch.Delete(SubscriptionKey(topic_name, service));
        return absl::OkStatus();
      },
      /*sync=*/true);
}

absl::StatusOr<TopicLog::ReplayResult> TopicLog::Replay(const std::string& topic_name,
                                                        const std::string& service,
                                                        uint64_t from_sequence) {
  ReplayResult result;
  CALLMESH_RETURN_IF_ERROR(Write(
      [&](Journal::SharedBatch& batch) -> absl::Status {
        absl::MutexLock lock(&mu_);
        auto topic = topics_.find(topic_name);
        if (topic == topics_.end() || topic->second.subscriptions.count(service) == 0) {
          return absl::NotFoundError(
              absl::StrCat("service ", service, " has no subscription to topic ", topic_name));
        }
        auto sub = topic->second.subscriptions.find(service);
        Topic& t = topic->second;
        result.first_available_sequence = t.held.empty() ? t.durable + 1 : t.held.front().sequence;
        result.next_sequence = std::min(
            std::max(std::max<uint64_t>(from_sequence, 1), result.first_available_sequence),
            t.durable + 1);
        sub->second.set_position(result.next_sequence - 1);
        batch.Put(SubscriptionKey(topic_name, service), sub->second.SerializeAsString());
        return absl::OkStatus();
      },
      /*sync=*/true));
  return result;
}

absl::StatusOr<uint64_t> TopicLog::SequenceAt(const std::string& topic_name,
                                              absl::Time time) const {
  uint64_t after_last;
  {
    absl::MutexLock lock(&mu_);
    auto topic = topics_.find(topic_name);
    if (topic == topics_.end()) return 1;
    for (const Held& held : topic->second.held) {
      if (held.published_at >= time) return held.sequence;
    }
    after_last = topic->second.assigned + 1;
  }
  return after_last;
}

void TopicLog::Advance(const std::string& topic_name, const std::string& service,
                       uint64_t position) {
  {
    absl::MutexLock lock(&mu_);
    auto topic = topics_.find(topic_name);
    if (topic == topics_.end()) return;
    auto sub = topic->second.subscriptions.find(service);
    if (sub == topic->second.subscriptions.end() || sub->second.position() >= position) return;
    sub->second.set_position(position);
  }
  // Writes the subscription as it is when the writer gets to it, so that concurrent advances
  // never store an older position last.
  Submit(
      [this, topic_name, service](Journal::SharedBatch& batch) {
        absl::MutexLock lock(&mu_);
        auto topic = topics_.find(topic_name);
        if (topic == topics_.end()) return absl::OkStatus();
        auto sub = topic->second.subscriptions.find(service);
        if (sub == topic->second.subscriptions.end()) return absl::OkStatus();
        batch.Put(SubscriptionKey(topic_name, service), sub->second.SerializeAsString());
        return absl::OkStatus();
      },
      256, /*sync=*/false, [](absl::Status) {});
}

absl::StatusOr<std::optional<v1::Event>> TopicLog::ReadEvent(const std::string& topic,
                                                             uint64_t sequence) const {
  if (sequence > last_sequence(topic)) return std::nullopt;
  const std::string key = EventKey(topic, sequence);
  std::string bytes;
  const rocksdb::Status s =
      journal_->shared_db()->Get(rocksdb::ReadOptions(), ToSlice(key), &bytes);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return ReadError(journal_->dir(), key, s);
  CALLMESH_ASSIGN_OR_RETURN(v1::Event event, Parse<v1::Event>(journal_->dir(), key, bytes));
  return event;
}

uint64_t TopicLog::last_sequence(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : it->second.durable;
}

std::vector<v1::SubscriptionInfo> TopicLog::Subscriptions() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::SubscriptionInfo> subscriptions;
  for (const auto& [name, topic] : topics_) {
    for (const auto& [service, info] : topic.subscriptions) {
      subscriptions.push_back(info);
      subscriptions.back().set_lag(topic.durable > info.position() ? topic.durable - info.position()
                                                                   : 0);
    }
  }
  return subscriptions;
}

std::vector<v1::TopicInfo> TopicLog::Topics() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::TopicInfo> topics;
  for (const auto& [name, topic] : topics_) {
    v1::TopicInfo& info = topics.emplace_back();
    const TopicRetention retention = RetentionOf(name);
    info.set_name(name);
    info.set_last_sequence(topic.durable);
    info.set_first_sequence(topic.held.empty() ? topic.durable + 1 : topic.held.front().sequence);
    info.set_events(topic.held.size());
    info.set_bytes(topic.bytes);
    info.set_max_bytes(retention.max_bytes);
    *info.mutable_max_age() = ToProtoDuration(retention.max_age);
    for (const auto& [service, sub] : topic.subscriptions) {
      v1::SubscriptionInfo& s = *info.add_subscriptions();
      s = sub;
      s.set_lag(topic.durable > sub.position() ? topic.durable - sub.position() : 0);
    }
  }
  return topics;
}

absl::Status TopicLog::PutDeadLetter(const v1::EventDeadLetter& dead_letter) {
  const std::string key = DeadLetterKey(dead_letter.event().topic(), dead_letter.subscriber(),
                                        dead_letter.event().sequence());
  return Write(
      [&](Journal::SharedBatch& batch) -> absl::Status {
        CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> existing, batch.Get(key));
        batch.Put(key, dead_letter.SerializeAsString());
        if (!existing.has_value()) {
          absl::MutexLock lock(&mu_);
          ++dead_letters_;
        }
        return absl::OkStatus();
      },
      /*sync=*/false);
}

absl::Status TopicLog::DeleteDeadLetter(const std::string& topic, const std::string& service,
                                        uint64_t sequence) {
  const std::string key = DeadLetterKey(topic, service, sequence);
  return Write(
      [&](Journal::SharedBatch& batch) -> absl::Status {
        CALLMESH_ASSIGN_OR_RETURN(std::optional<std::string> existing, batch.Get(key));
        if (!existing.has_value()) {
          return absl::NotFoundError(absl::StrCat("no dead letter of topic ", topic,
                                                  " for subscriber ", service, " at sequence ",
                                                  sequence));
        }
        batch.Delete(key);
        absl::MutexLock lock(&mu_);
        --dead_letters_;
        return absl::OkStatus();
      },
      /*sync=*/false);
}

absl::StatusOr<v1::EventDeadLetter> TopicLog::GetDeadLetter(const std::string& topic,
                                                            const std::string& service,
                                                            uint64_t sequence) const {
  const std::string key = DeadLetterKey(topic, service, sequence);
  std::string bytes;
  const rocksdb::Status s =
      journal_->shared_db()->Get(rocksdb::ReadOptions(), ToSlice(key), &bytes);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("no dead letter of topic ", topic, " for subscriber ",
                                            service, " at sequence ", sequence));
  }
  if (!s.ok()) return ReadError(journal_->dir(), key, s);
  return Parse<v1::EventDeadLetter>(journal_->dir(), key, bytes);
}

absl::StatusOr<std::vector<v1::EventDeadLetter>> TopicLog::ListDeadLetters(
    const std::string& topic, const std::string& subscriber) const {
  std::string prefix(keys::kEventDeadLetterPrefix);
  if (!topic.empty()) {
    absl::StrAppend(&prefix, topic, "/");
    if (!subscriber.empty()) absl::StrAppend(&prefix, subscriber, "/");
  }
  std::vector<v1::EventDeadLetter> dead_letters;
  PrefixIterator it(journal_->shared_db(), prefix, nullptr);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    CALLMESH_ASSIGN_OR_RETURN(
        v1::EventDeadLetter dead_letter,
        Parse<v1::EventDeadLetter>(journal_->dir(), key, it->value().ToString()));
    if (!subscriber.empty() && dead_letter.subscriber() != subscriber) continue;
    dead_letters.push_back(std::move(dead_letter));
  }
  if (!it->status().ok()) return ReadError(journal_->dir(), prefix, it->status());
  return dead_letters;
}

size_t TopicLog::dead_letter_count() const {
  absl::MutexLock lock(&mu_);
  return dead_letters_;
}

uint64_t TopicLog::events_published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

absl::StatusOr<size_t> TopicLog::Purge(absl::Time now) {
  std::vector<std::string> names;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [name, topic] : topics_) names.push_back(name);
  }
  size_t purged = 0;
  for (const std::string& name : names) {
    const absl::Time cutoff = now - RetentionOf(name).max_age;
    while (true) {
      size_t chunk = 0;
      CALLMESH_RETURN_IF_ERROR(Write(
          [&](Journal::SharedBatch& batch) -> absl::Status {
            absl::MutexLock lock(&mu_);
            Topic& topic = TopicNamed(name);
            const uint64_t consumed = ConsumedThrough(topic);
            chunk = 0;
            while (chunk < kPurgeChunk && !topic.held.empty() &&
                   topic.held.front().sequence <= consumed &&
                   topic.held.front().published_at <= cutoff) {
              CALLMESH_RETURN_IF_ERROR(DropOldest(name, topic, batch));
              ++chunk;
            }
            return absl::OkStatus();
          },
          /*sync=*/false));
      purged += chunk;
      if (chunk < kPurgeChunk) break;
    }
  }
  return purged;
}

}  // namespace callmesh::sidecar::pubsub

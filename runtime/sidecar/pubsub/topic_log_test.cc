// TopicLog on a real journal under $TEST_TMPDIR: sequences, idempotent publish, subscriptions and
// their start positions, retention by bytes and by age (on a fake time), replay, dead letters,
// and everything surviving a reopen.
#include "runtime/sidecar/pubsub/topic_log.h"

#include <atomic>
#include <filesystem>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "runtime/common/proto_time.h"

namespace callmesh::sidecar::pubsub {
namespace {

namespace fs = std::filesystem;

class TopicLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    dir_ = (fs::path(::testing::TempDir()) / ("topic_log_" + std::to_string(counter++))).string();
    fs::remove_all(dir_);
    Open();
  }

  void Open() {
    log_.reset();
    journal_.reset();
    JournalOptions options;
    options.dir = dir_;
    options.verify_checksums_at_open = false;
    auto journal = Journal::Open(options);
    ASSERT_TRUE(journal.ok()) << journal.status();
    journal_ = *std::move(journal);
    TopicLog::Options log_options;
    log_options.clock = [this] { return now_; };
    log_options.topics["small"] = {.max_bytes = 1000, .max_age = absl::Hours(1)};
    auto log = TopicLog::Open(journal_.get(), log_options);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  absl::StatusOr<TopicLog::PublishResult> Publish(const std::string& topic,
                                                  const std::string& payload,
                                                  const std::string& key = "",
                                                  const std::string& source = "orders") {
    v1::Event event;
    event.set_topic(topic);
    event.set_event_id("ev-" + std::to_string(next_id_++));
    event.set_payload(payload);
    event.set_source(source);
    absl::Notification done;
    absl::StatusOr<TopicLog::PublishResult> result;
    log_->Publish(std::move(event), key, [&](absl::StatusOr<TopicLog::PublishResult> r) {
      result = std::move(r);
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  absl::StatusOr<v1::SubscriptionInfo> Subscribe(
      const std::string& topic, const std::string& service,
      v1::SubscriptionStart start = v1::SUBSCRIPTION_START_NEW, uint64_t start_sequence = 0) {
    v1::Subscription subscription;
    subscription.set_topic(topic);
    subscription.set_method("p.S/On");
    subscription.set_start(start);
    subscription.set_start_sequence(start_sequence);
    return log_->Subscribe(service, subscription);
  }

  std::string dir_;
  absl::Time now_ = absl::FromUnixSeconds(1'800'000'000);
  int next_id_ = 1;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<TopicLog> log_;
};

TEST_F(TopicLogTest, SequencesAreDenseAndSurviveReopen) {
  for (int i = 1; i <= 3; ++i) {
    auto published = Publish("orders", "x");
    ASSERT_TRUE(published.ok()) << published.status();
    EXPECT_EQ(published->sequence, static_cast<uint64_t>(i));
    EXPECT_FALSE(published->deduplicated);
  }
  Open();
  EXPECT_EQ(log_->last_sequence("orders"), 3u);
  auto fourth = Publish("orders", "y");
  ASSERT_TRUE(fourth.ok());
  EXPECT_EQ(fourth->sequence, 4u);
  auto event = log_->ReadEvent("orders", 4);
  ASSERT_TRUE(event.ok() && event->has_value());
  EXPECT_EQ((*event)->payload(), "y");
  EXPECT_EQ((*event)->event_id(), fourth->event_id);
}

TEST_F(TopicLogTest, IdempotencyKeyIsScopedPerPublisher) {
  auto first = Publish("orders", "a", "key-1", "orders");
  auto again = Publish("orders", "b", "key-1", "orders");
  auto other_publisher = Publish("orders", "c", "key-1", "shop");
  ASSERT_TRUE(first.ok() && again.ok() && other_publisher.ok());
  EXPECT_TRUE(again->deduplicated);
  EXPECT_EQ(again->event_id, first->event_id);
  EXPECT_EQ(again->sequence, first->sequence);
  EXPECT_FALSE(other_publisher->deduplicated);
  EXPECT_EQ(other_publisher->sequence, 2u);
  EXPECT_EQ(log_->last_sequence("orders"), 2u);
  Open();
  auto after_reopen = Publish("orders", "d", "key-1", "orders");
  ASSERT_TRUE(after_reopen.ok());
  EXPECT_TRUE(after_reopen->deduplicated);
  EXPECT_EQ(after_reopen->event_id, first->event_id);
}

TEST_F(TopicLogTest, SubscriptionStartsAfterWhatWasPublishedUnlessAskedOtherwise) {
  ASSERT_TRUE(Publish("orders", "1").ok());
  ASSERT_TRUE(Publish("orders", "2").ok());
  auto fresh = Subscribe("orders", "billing");
  auto all = Subscribe("orders", "audit", v1::SUBSCRIPTION_START_ALL);
  auto from_two = Subscribe("orders", "search", v1::SUBSCRIPTION_START_SEQUENCE, 2);
  ASSERT_TRUE(fresh.ok() && all.ok() && from_two.ok());
  EXPECT_EQ(fresh->position(), 2u);
  EXPECT_EQ(all->position(), 0u);
  EXPECT_EQ(from_two->position(), 1u);
  auto published = Publish("orders", "3");
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->subscribers, 3u);
  Open();
  const auto subscriptions = log_->Subscriptions();
  ASSERT_EQ(subscriptions.size(), 3u);
  for (const auto& sub : subscriptions) {
    if (sub.service() == "billing") {
      EXPECT_EQ(sub.lag(), 1u);
    }
    if (sub.service() == "audit") {
      EXPECT_EQ(sub.lag(), 3u);
    }
  }
}

TEST_F(TopicLogTest, AnotherMethodForTheSameTopicIsRefused) {
  ASSERT_TRUE(Subscribe("orders", "billing").ok());
  v1::Subscription other;
  other.set_topic("orders");
  other.set_method("p.S/Other");
  auto refused = log_->Subscribe("billing", other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("already subscribes"), absl::string_view::npos);
}

TEST_F(TopicLogTest, FullRetentionOfOwedEventsRefusesPublish) {
  ASSERT_TRUE(Subscribe("small", "billing").ok());
  const std::string payload(250, 'p');
  int accepted = 0;
  absl::Status refused;
  for (int i = 0; i < 10 && refused.ok(); ++i) {
    auto published = Publish("small", payload);
    if (published.ok()) {
      ++accepted;
    } else {
      refused = published.status();
    }
  }
  EXPECT_EQ(accepted, 3);  // three events of ~290 bytes fit in 1000
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused.message().find("topic small is full"), absl::string_view::npos) << refused;
  EXPECT_EQ(log_->last_sequence("small"), 3u);  // the refused publish left nothing behind
  // Once the subscriber has the events, they make room (oldest first).
  log_->Advance("small", "billing", 2);
  auto published = Publish("small", payload);
  ASSERT_TRUE(published.ok()) << published.status();
  EXPECT_EQ(published->sequence, 4u);
  auto first = log_->ReadEvent("small", 1);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->has_value());
  auto second = log_->ReadEvent("small", 2);  // one event made room; no more were dropped
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->has_value());
  auto third = log_->ReadEvent("small", 3);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->has_value());
}

TEST_F(TopicLogTest, PurgeDropsOnlyDeliveredEventsPastMaxAge) {
  ASSERT_TRUE(Subscribe("small", "billing").ok());
  ASSERT_TRUE(Publish("small", "1").ok());
  ASSERT_TRUE(Publish("small", "2").ok());
  now_ += absl::Hours(2);
  // Owed to billing: kept however old.
  auto purged = log_->Purge(now_);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 0u);
  log_->Advance("small", "billing", 1);
  purged = log_->Purge(now_);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1u);
  auto replay = log_->Replay("small", "billing", 1);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->first_available_sequence, 2u);
  EXPECT_EQ(replay->next_sequence, 2u);
}

TEST_F(TopicLogTest, ReplayMovesThePositionDurably) {
  ASSERT_TRUE(Subscribe("orders", "billing").ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Publish("orders", "e").ok());
  }
  log_->Advance("orders", "billing", 5);
  auto replay = log_->Replay("orders", "billing", 3);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->next_sequence, 3u);
  EXPECT_EQ(replay->first_available_sequence, 1u);
  Open();
  EXPECT_EQ(log_->Subscriptions().at(0).position(), 2u);
  EXPECT_EQ(log_->Replay("orders", "nobody", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TopicLogTest, SequenceAtFindsTheFirstEventAtOrAfterATime) {
  ASSERT_TRUE(Publish("orders", "1").ok());
  now_ += absl::Minutes(1);
  const absl::Time second = now_;
  ASSERT_TRUE(Publish("orders", "2").ok());
  auto at = log_->SequenceAt("orders", second);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, 2u);
  at = log_->SequenceAt("orders", second + absl::Seconds(1));
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, 3u);
}

TEST_F(TopicLogTest, DeadLettersAreListedAndSurviveReopen) {
  ASSERT_TRUE(Publish("orders", "1").ok());
  v1::EventDeadLetter dead;
  auto event = log_->ReadEvent("orders", 1);
  ASSERT_TRUE(event.ok() && event->has_value());
  *dead.mutable_event() = **event;
  dead.set_subscriber("billing");
  dead.set_method("p.S/On");
  dead.set_attempts(3);
  ASSERT_TRUE(log_->PutDeadLetter(dead).ok());
  Open();
  EXPECT_EQ(log_->dead_letter_count(), 1u);
  auto listed = log_->ListDeadLetters("orders", "billing");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->at(0).attempts(), 3u);
  EXPECT_TRUE(log_->DeleteDeadLetter("orders", "billing", 1).ok());
  EXPECT_EQ(log_->dead_letter_count(), 0u);
  EXPECT_EQ(log_->DeleteDeadLetter("orders", "billing", 1).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace callmesh::sidecar::pubsub

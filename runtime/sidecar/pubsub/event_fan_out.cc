#include "runtime/sidecar/pubsub/event_fan_out.h"

#include <utility>
#include <vector>

#include "absl/random/distributions.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/byte_buffers.h"
#include "runtime/common/proto_time.h"
#include "runtime/sidecar/calls/retry_decision.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::pubsub {
namespace {

// How often an event waiting for an instance of its subscriber looks again.
constexpr absl::Duration kWaitForInstance = absl::Milliseconds(250);

std::string MethodPathOf(const std::string& method) {
  return absl::StartsWith(method, "/") ? method : absl::StrCat("/", method);
}

}  // namespace

EventFanOut::EventFanOut(TopicLog* log, Invoker* invoker, const DispatchPolicies* policies,
                         TaskRunner* runner, Options options)
    : log_(log),
      invoker_(invoker),
      policies_(policies),
      runner_(runner),
      clock_(runner->clock()),
      random_(options.jitter_seed) {}

std::string EventFanOut::KeyOf(const std::string& topic, const std::string& service) {
  return absl::StrCat(topic, "/", service);
}

double EventFanOut::Draw() {
  absl::MutexLock lock(&mu_);
  return absl::Uniform(random_, 0.0, 1.0);
}

absl::Status EventFanOut::Start() {
  for (const v1::SubscriptionInfo& subscription : log_->Subscriptions()) Subscribed(subscription);
  absl::StatusOr<std::vector<v1::EventDeadLetter>> dead_letters = log_->ListDeadLetters("", "");
  if (!dead_letters.ok()) return dead_letters.status();
  for (const v1::EventDeadLetter& dead_letter : *dead_letters) {
    if (!dead_letter.redriving()) continue;
    Delivery delivery;
    delivery.topic = dead_letter.event().topic();
    delivery.service = dead_letter.subscriber();
    delivery.method = dead_letter.method();
    delivery.sequence = dead_letter.event().sequence();
    delivery.redrive = true;
    delivery.event = std::make_shared<v1::Event>(dead_letter.event());
    runner_->Post(
        [this, delivery = std::move(delivery)]() mutable { Attempt(std::move(delivery)); });
  }
  return absl::OkStatus();
}

void EventFanOut::Subscribed(const v1::SubscriptionInfo& subscription) {
  const std::string key = KeyOf(subscription.topic(), subscription.service());
  {
    absl::MutexLock lock(&mu_);
    auto [it, created] = cursors_.try_emplace(key);
    Cursor& cursor = it->second;
    cursor.mode = subscription.mode();
    if (created) {
      // Generations are unique across cursors: deliveries of a subscription that was removed
      // and made again never count for the new one.
      cursor.generation = ++generations_;
      cursor.topic = subscription.topic();
      cursor.service = subscription.service();
      cursor.method = subscription.method();
      cursor.acked = subscription.position();
      cursor.next = cursor.acked + 1;
    }
  }
  Pump(key);
}

void EventFanOut::Replayed(const std::string& topic, const std::string& service,
                           uint64_t position) {
  const std::string key = KeyOf(topic, service);
  {
    absl::MutexLock lock(&mu_);
    auto it = cursors_.find(key);
    if (it == cursors_.end()) return;
    Cursor& cursor = it->second;
    cursor.generation = ++generations_;
    cursor.in_flight.clear();
    cursor.done.clear();
    cursor.acked = position;
    cursor.next = position + 1;
  }
  Pump(key);
}

void EventFanOut::Unsubscribed(const std::string& topic, const std::string& service) {
  absl::MutexLock lock(&mu_);
  cursors_.erase(KeyOf(topic, service));
}

void EventFanOut::Published(const std::string& topic) {
  std::vector<std::string> keys;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, cursor] : cursors_) {
      if (cursor.topic == topic) keys.push_back(key);
    }
  }
  for (const std::string& key : keys) Pump(key);
}

void EventFanOut::Pump(const std::string& key) {
  std::vector<Delivery> starts;
  {
    absl::MutexLock lock(&mu_);
    auto it = cursors_.find(key);
    if (it == cursors_.end()) return;
    Cursor& cursor = it->second;
    const size_t limit = cursor.mode == v1::SUBSCRIPTION_MODE_ORDERED
                             ? 1
                             : std::max<uint32_t>(policies_->MaxInFlight(cursor.service), 1);
    const uint64_t last = log_->last_sequence(cursor.topic);
    while (cursor.in_flight.size() < limit && cursor.next <= last) {
      Delivery delivery;
      delivery.key = key;
      delivery.topic = cursor.topic;
      delivery.service = cursor.service;
      delivery.method = cursor.method;
      delivery.generation = cursor.generation;
      delivery.sequence = cursor.next++;
      cursor.in_flight.insert(delivery.sequence);
      starts.push_back(std::move(delivery));
    }
  }
  for (Delivery& delivery : starts) {
    runner_->Post(
        [this, delivery = std::move(delivery)]() mutable { Attempt(std::move(delivery)); });
  }
}

bool EventFanOut::Current(const Delivery& delivery) const {
  if (delivery.redrive) return true;
  absl::MutexLock lock(&mu_);
  auto it = cursors_.find(delivery.key);
  return it != cursors_.end() && it->second.generation == delivery.generation;
}

void EventFanOut::Attempt(Delivery delivery) {
  if (!Current(delivery)) return;
  if (delivery.event == nullptr) {
    absl::StatusOr<std::optional<v1::Event>> event =
        log_->ReadEvent(delivery.topic, delivery.sequence);
    if (!event.ok()) {
      spdlog::error("pubsub: cannot read event {} of topic {}: {}", delivery.sequence,
                    delivery.topic, event.status().ToString());
      runner_->PostAt(clock_->Now() + kWaitForInstance,
                      [this, delivery]() mutable { Attempt(std::move(delivery)); });
      return;
    }
    if (!event->has_value()) {
      // Gone with the retention (possible only after a replay below what is retained).
      Handled(delivery);
      return;
    }
    delivery.event = std::make_shared<v1::Event>(**std::move(event));
  }
  const v1::Event& event = *delivery.event;
  InvokeCall call;
  call.service = delivery.service;
  call.method_path = MethodPathOf(delivery.method);
  call.cid = event.event_id();
  call.source = event.source();
  call.attempt = delivery.attempt;
  call.deadline = clock_->Now() + policies_->AttemptTimeout(delivery.service);
  for (const auto& [key, value] : event.headers()) call.headers.emplace_back(key, value);
  call.callmesh_metadata = {{kTopicMetadata, event.topic()},
                            {kSequenceMetadata, absl::StrCat(event.sequence())}};
  auto started = invoker_->Start(std::move(call), StringToByteBuffer(event.payload()),
                                 [this, delivery](const grpc::Status& status, grpc::ByteBuffer*) {
                                   runner_->Post([this, delivery, status]() mutable {
                                     AttemptDone(std::move(delivery), status);
                                   });
                                 });
  if (!started.ok()) {
    const absl::Status& s = started.status();
    if (absl::IsNotFound(s) || absl::IsUnavailable(s)) {
      // No (healthy) instance to deliver to: wait for one without using up an attempt. The
      // Invoker's pick is the only one, so competing instances take turns.
      runner_->PostAt(clock_->Now() + kWaitForInstance,
                      [this, delivery]() mutable { Attempt(std::move(delivery)); });
      return;
    }
    AttemptDone(std::move(delivery),
                grpc::Status(static_cast<grpc::StatusCode>(static_cast<int>(s.code())),
                             std::string(s.message())));
  }
}

void EventFanOut::AttemptDone(Delivery delivery, const grpc::Status& status) {
  if (!Current(delivery)) return;
  if (status.ok()) {
    delivered_.fetch_add(1);
    if (delivery.redrive) {
      if (absl::Status s =
              log_->DeleteDeadLetter(delivery.topic, delivery.service, delivery.sequence);
          !s.ok() && !absl::IsNotFound(s)) {
        spdlog::error("pubsub: cannot delete redriven dead letter: {}", s.ToString());
      }
      return;
    }
    Handled(delivery);
    return;
  }
  const int code = static_cast<int>(status.error_code());
  const calls::Decision next = calls::DecideAfterAttempt(
      {.attempt = delivery.attempt, .deadline = absl::InfiniteFuture()}, code, clock_->Now(),
      policies_->Retry(delivery.service, delivery.method), Draw());
  if (next.step == calls::Step::kRetry) {
    ++delivery.attempt;
    runner_->PostAt(next.retry_at, [this, delivery]() mutable { Attempt(std::move(delivery)); });
    return;
  }
  v1::EventDeadLetter dead_letter;
  *dead_letter.mutable_event() = *delivery.event;
  dead_letter.set_subscriber(delivery.service);
  dead_letter.set_method(delivery.method);
  dead_letter.set_attempts(delivery.attempt);
  dead_letter.set_last_status_code(code);
  dead_letter.set_last_status_message(status.error_message());
  *dead_letter.mutable_dead_lettered_at() = ToProtoTimestamp(clock_->Now());
  if (absl::Status s = log_->PutDeadLetter(dead_letter); !s.ok()) {
    // Not recorded: keep the event owed (not acknowledged), so it is delivered again after a
    // restart rather than lost.
    spdlog::error("[cid={}] pubsub: cannot dead-letter event {} of {} for {}: {}",
                  delivery.event->event_id(), delivery.sequence, delivery.topic, delivery.service,
                  s.ToString());
    return;
  }
  spdlog::warn(
      "[cid={}] pubsub: event {} of topic {} dead-lettered for {} after {} attempt(s): {} {}",
      delivery.event->event_id(), delivery.sequence, delivery.topic, delivery.service,
      delivery.attempt, code, status.error_message());
  if (!delivery.redrive) Handled(delivery);
}

void EventFanOut::Handled(const Delivery& delivery) {
  uint64_t position = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = cursors_.find(delivery.key);
    if (it == cursors_.end() || it->second.generation != delivery.generation) return;
    Cursor& cursor = it->second;
    cursor.in_flight.erase(delivery.sequence);
    cursor.done.insert(delivery.sequence);
    while (!cursor.done.empty() && *cursor.done.begin() == cursor.acked + 1) {
      cursor.done.erase(cursor.done.begin());
      ++cursor.acked;
    }
    position = cursor.acked;
  }
  log_->Advance(delivery.topic, delivery.service, position);
  Pump(delivery.key);
}

absl::Status EventFanOut::Redrive(const std::string& topic, const std::string& service,
                                  uint64_t sequence) {
  absl::StatusOr<v1::EventDeadLetter> dead_letter = log_->GetDeadLetter(topic, service, sequence);
  if (!dead_letter.ok()) return dead_letter.status();
  if (dead_letter->redriving()) {
    return absl::FailedPreconditionError(absl::StrCat("the dead letter of topic ", topic, " for ",
                                                      service, " at sequence ", sequence,
                                                      " is being redriven already"));
  }
  dead_letter->set_redriving(true);
  if (absl::Status s = log_->PutDeadLetter(*dead_letter); !s.ok()) return s;
  Delivery delivery;
  delivery.topic = topic;
  delivery.service = service;
  delivery.method = dead_letter->method();
  delivery.sequence = sequence;
  delivery.redrive = true;
  delivery.event = std::make_shared<v1::Event>(dead_letter->event());
  runner_->Post([this, delivery = std::move(delivery)]() mutable { Attempt(std::move(delivery)); });
  return absl::OkStatus();
}

uint32_t EventFanOut::InFlight(const std::string& topic, const std::string& service) const {
  absl::MutexLock lock(&mu_);
  auto it = cursors_.find(KeyOf(topic, service));
  return it == cursors_.end() ? 0 : static_cast<uint32_t>(it->second.in_flight.size());
}

}  // namespace callmesh::sidecar::pubsub

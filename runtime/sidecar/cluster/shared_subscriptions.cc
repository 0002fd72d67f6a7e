#include "runtime/sidecar/cluster/shared_subscriptions.h"

#include "absl/strings/str_cat.h"
#include "runtime/common/proto_time.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::cluster {
namespace {

// How often queued writes are tried while NATS refuses them.
constexpr absl::Duration kWriteEvery = absl::Milliseconds(200);

std::string KeyOf(const std::string& topic, const std::string& service) {
  return absl::StrCat(topic, "/", service);
}

}  // namespace

SharedSubscriptions::SharedSubscriptions(Options options)
    : options_(std::move(options)),
      bucket_{.name = options_.cluster.subscriptions_bucket(),
              .description = "callmesh: the subscriptions of the cluster (publish/subscribe)",
              .replicas = static_cast<int>(options_.cluster.replicas())} {}

SharedSubscriptions::~SharedSubscriptions() { Stop(); }

void SharedSubscriptions::Start() {
  if (watch_thread_.joinable() || stop_.HasBeenNotified()) return;
  watch_thread_ = std::thread([this] {
    WatchHandlers handlers;
    handlers.on_entry = [this](const BucketEntry& entry) { Apply(entry); };
    handlers.on_state = [this](const std::string& error) {
      if (!error.empty()) spdlog::warn("cluster: subscriptions: {}", error);
      absl::MutexLock lock(&mu_);
      watch_error_ = error;
    };
    WatchBucket(*options_.nats, bucket_, &stop_, handlers);
  });
  write_thread_ = std::thread([this] { Loop(); });
}

void SharedSubscriptions::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (watch_thread_.joinable()) watch_thread_.join();
  if (write_thread_.joinable()) write_thread_.join();
}

void SharedSubscriptions::Share(const std::string& service, const v1::Subscription& subscription) {
  v1::SharedSubscription shared;
  shared.set_topic(subscription.topic());
  shared.set_service(service);
  shared.set_method(subscription.method());
  shared.set_mode(subscription.mode());
  shared.set_start(subscription.start() == v1::SUBSCRIPTION_START_ALL
                       ? v1::SUBSCRIPTION_START_ALL
                       : v1::SUBSCRIPTION_START_TIME);
  *shared.mutable_start_time() = subscription.start() == v1::SUBSCRIPTION_START_TIME
                                     ? subscription.start_time()
                                     : ToProtoTimestamp(options_.clock->Now());
  absl::MutexLock lock(&mu_);
  queued_[KeyOf(subscription.topic(), service)] = std::move(shared);
}

void SharedSubscriptions::Withdraw(const std::string& topic, const std::string& service) {
  absl::MutexLock lock(&mu_);
  queued_[KeyOf(topic, service)] = std::nullopt;
}

std::string SharedSubscriptions::problem() const {
  absl::MutexLock lock(&mu_);
  if (!watch_error_.empty()) return watch_error_;
  if (!write_error_.empty()) return write_error_;
  if (!queued_.empty())
    return absl::StrCat(queued_.size(), " subscription change(s) not shared yet");
  return "";
}

void SharedSubscriptions::Loop() {
  KvBucket bucket;
  do {
    {
      absl::MutexLock lock(&mu_);
      if (queued_.empty()) continue;
    }
    if (bucket == nullptr) {
      absl::StatusOr<KvBucket> opened = OpenBucket(*options_.nats, bucket_);
      if (!opened.ok()) {
        absl::MutexLock lock(&mu_);
        write_error_ = std::string(opened.status().message());
        continue;
      }
      bucket = *std::move(opened);
    }
    if (!Flush(bucket.get())) bucket.reset();
  } while (!stop_.WaitForNotificationWithTimeout(kWriteEvery));
}

bool SharedSubscriptions::Flush(kvStore* bucket) {
  std::map<std::string, std::optional<v1::SharedSubscription>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch = queued_;
  }
  for (const auto& [key, shared] : batch) {
    natsStatus s;
    if (shared.has_value()) {
      s = PutJson(bucket, key, *shared);
    } else {
      s = kvStore_Delete(bucket, key.c_str());
    }
    absl::MutexLock lock(&mu_);
    if (s != NATS_OK) {
      write_error_ = NatsError(absl::StrCat("sharing subscription ", key), s);
      spdlog::warn("cluster: {}", write_error_);
      return false;
    }
    write_error_.clear();
    // Done unless it was asked for again meanwhile.
    auto it = queued_.find(key);
    if (it != queued_.end() && it->second.has_value() == shared.has_value() &&
        (!shared.has_value() || it->second->SerializeAsString() == shared->SerializeAsString())) {
      queued_.erase(it);
    }
  }
  return true;
}

void SharedSubscriptions::Apply(const BucketEntry& entry) {
  const size_t slash = entry.key.find('/');
  if (slash == std::string::npos) return;
  const std::string topic = entry.key.substr(0, slash);
  const std::string service = entry.key.substr(slash + 1);
  if (!entry.put) {
    absl::Status removed = options_.topics->Unsubscribe(topic, service);
    if (removed.ok()) {
      options_.fan_out->Unsubscribed(topic, service);
      spdlog::info("cluster: subscription of {} to {} removed (by another sidecar)", service,
                   topic);
    } else if (!absl::IsNotFound(removed)) {
      spdlog::warn("cluster: removing subscription {}: {}", entry.key, removed.ToString());
    }
    return;
  }
  v1::SharedSubscription shared;
  if (!ParseJson(entry.value, &shared) || shared.topic() != topic || shared.service() != service) {
    spdlog::warn("cluster: subscriptions entry {} does not parse; ignored", entry.key);
    return;
  }
  v1::Subscription subscription;
  subscription.set_topic(topic);
  subscription.set_method(shared.method());
  subscription.set_mode(shared.mode());
  subscription.set_start(shared.start());
  *subscription.mutable_start_time() = shared.start_time();
  // An existing subscription with the same method is returned unchanged (mode updated).
  absl::StatusOr<v1::SubscriptionInfo> made = options_.topics->Subscribe(service, subscription);
  if (!made.ok()) {
    spdlog::warn("cluster: subscription of {} to {} from another sidecar refused here: {}", service,
                 topic, made.status().ToString());
    return;
  }
  options_.fan_out->Subscribed(*made);
}

}  // namespace callmesh::sidecar::cluster

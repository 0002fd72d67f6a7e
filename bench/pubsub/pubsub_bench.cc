// pubsub_bench: end-to-end fan-out through callmeshd with the generated publisher and subscribers.
//
//   pubsub_bench --sidecar=127.0.0.1:PORT --in-flight=64 --duration=10 --subscribers=3
//                --payload-bytes=1024 --label=x
//
// Starts `--subscribers` subscribing services (mesh names pubsub-bench-1..N, one instance each,
// PARALLEL) in this process, then publishes from `--in-flight` threads in a closed loop (each
// Publish returns once the event is durable) for `--duration` seconds, then waits until every
// subscriber has acknowledged every event. Prints a human line and "RESULT {json}":
// published/s over the publishing window, delivered/s = deliveries / (time from the first
// publish to the last acknowledgement), publish latency p50/p99.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/common/percentile.h"
#include "bench/pubsub/bench_events.callmesh.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"

ABSL_FLAG(std::string, sidecar, "127.0.0.1:4770", "Address of callmeshd.");
ABSL_FLAG(int, in_flight, 64, "Publishing threads (publishes in flight).");
ABSL_FLAG(double, duration, 10, "Seconds of publishing.");
ABSL_FLAG(int, subscribers, 3, "Subscribing services.");
ABSL_FLAG(int, payload_bytes, 1024, "Bytes of payload per event.");
ABSL_FLAG(std::string, label, "", "Label of the run in the RESULT line.");

namespace {

class CountingSubscriber final : public bench::v1::BenchEventsSubscriber {
 public:
  absl::Status OnTick(const callmesh::EventContext&, const bench::v1::Tick&) override {
    delivered_.fetch_add(1);
    last_ack_ns_.store(absl::GetCurrentTimeNanos());
    return absl::OkStatus();
  }
  int64_t delivered() const { return delivered_.load(); }
  int64_t last_ack_ns() const { return last_ack_ns_.load(); }

 private:
  std::atomic<int64_t> delivered_{0};
  std::atomic<int64_t> last_ack_ns_{0};
};

using callmesh::bench::Percentile;

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string sidecar = absl::GetFlag(FLAGS_sidecar);
  const int in_flight = absl::GetFlag(FLAGS_in_flight);
  const int subscribers = absl::GetFlag(FLAGS_subscribers);
  std::vector<std::unique_ptr<CountingSubscriber>> counters;
  std::vector<std::unique_ptr<callmesh::ServiceHost>> hosts;
  for (int i = 1; i <= subscribers; ++i) {
    counters.push_back(std::make_unique<CountingSubscriber>());
    hosts.push_back(std::make_unique<callmesh::ServiceHost>(callmesh::ServiceHostOptions{
        .name = absl::StrCat("pubsub-bench-", i), .sidecar = sidecar}));
    hosts.back()->AddSubscriber(counters.back().get());
    if (absl::Status s = hosts.back()->Start(); !s.ok()) {
      std::fprintf(stderr, "pubsub_bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  callmesh::Mesh mesh({.sidecar = sidecar, .source = "pubsub-bench"});
  bench::v1::BenchEventsPublisher publisher(mesh);
  bench::v1::Tick tick;
  tick.set_payload(std::string(absl::GetFlag(FLAGS_payload_bytes), 'x'));

  std::vector<int64_t> base;
  for (const auto& c : counters) base.push_back(c->delivered());
  const absl::Time start = absl::Now();
  const absl::Time stop = start + absl::Seconds(absl::GetFlag(FLAGS_duration));
  std::atomic<int64_t> published{0}, failed{0};
  absl::Mutex mu;
  std::vector<double> latencies_us;
  std::vector<std::thread> threads;
  for (int t = 0; t < in_flight; ++t) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      while (absl::Now() < stop) {
        const absl::Time sent = absl::Now();
        absl::StatusOr<callmesh::v1::PublishResponse> r = publisher.PublishTick(tick);
        if (!r.ok()) {
          if (failed.fetch_add(1) == 0) {
            std::fprintf(stderr, "pubsub_bench: %s\n", r.status().ToString().c_str());
          }
          continue;
        }
        published.fetch_add(1);
        mine.push_back(absl::ToDoubleMicroseconds(absl::Now() - sent));
      }
      absl::MutexLock lock(&mu);
      latencies_us.insert(latencies_us.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& t : threads) t.join();
  const double publish_s = absl::ToDoubleSeconds(absl::Now() - start);
  const int64_t expected = published.load() * subscribers;
  auto delivered = [&] {
    int64_t sum = 0;
    for (size_t i = 0; i < counters.size(); ++i) sum += counters[i]->delivered() - base[i];
    return sum;
  };
  const absl::Time drain_deadline = absl::Now() + absl::Seconds(120);
  while (delivered() < expected && absl::Now() < drain_deadline)
    absl::SleepFor(absl::Milliseconds(5));
  int64_t last_ack_ns = 0;
  for (const auto& c : counters) last_ack_ns = std::max(last_ack_ns, c->last_ack_ns());
  // No subscriber (publish alone): 0 deliveries/s.
  const double deliver_s = last_ack_ns > 0 ? (last_ack_ns - absl::ToUnixNanos(start)) / 1e9 : 1;
  const int64_t got = delivered();
  std::sort(latencies_us.begin(), latencies_us.end());
  const double p50 = Percentile(latencies_us, 50), p99 = Percentile(latencies_us, 99);
  std::printf(
      "%s: %lld published (%.0f/s, p50 %.0f us, p99 %.0f us), %lld of %lld deliveries (%.0f/s), "
      "%lld failed\n",
      absl::GetFlag(FLAGS_label).c_str(), static_cast<long long>(published.load()),
      published.load() / publish_s, p50, p99, static_cast<long long>(got),
      static_cast<long long>(expected), got / deliver_s, static_cast<long long>(failed.load()));
  std::printf(
      "RESULT {\"label\":\"%s\",\"in_flight\":%d,\"subscribers\":%d,\"published\":%lld,"
      "\"publish_per_s\":%.1f,\"publish_p50_us\":%.0f,\"publish_p99_us\":%.0f,"
      "\"delivered\":%lld,\"expected\":%lld,\"delivered_per_s\":%.1f,\"failed\":%lld}\n",
      absl::GetFlag(FLAGS_label).c_str(), in_flight, subscribers,
      static_cast<long long>(published.load()), published.load() / publish_s, p50, p99,
      static_cast<long long>(got), static_cast<long long>(expected), got / deliver_s,
      static_cast<long long>(failed.load()));
  std::fflush(stdout);
  for (auto& host : hosts) host->Shutdown(absl::Seconds(2));
  return got == expected && failed.load() == 0 ? 0 : 1;
}

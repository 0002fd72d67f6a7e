// A small metrics registry rendered in the Prometheus text exposition format (version 0.0.4):
// counters, gauges and histograms with labels, and metrics computed when scraped.
//
//   metrics::Registry registry;
//   metrics::CounterFamily* attempts = registry.AddCounter(
//       "callmesh_attempts_total", "Attempts of async calls, by status code.", {"code"});
//   metrics::Counter* ok = attempts->With({"OK"});  // resolve a label set once ...
//   ok->Increment();                                  // ... then one relaxed atomic add
//   std::string text = registry.Render();             // what /metrics serves
//
// Cardinality is bounded: a family holds at most `max_series` label sets; further label sets share
// one series whose every label value is "_overflow" (and `overflowed()` counts them), so a bad
// caller cannot grow memory or the scrape without bound. Never put a CID in a label.
//
// Names must follow Prometheus' rules (metric [a-zA-Z_:][a-zA-Z0-9_:]*, label
// [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", not "le" on a histogram) and be registered once: a
// bad or duplicate name is a programming error and aborts with a message naming it.
//
// Thread-safe: registering, resolving label sets, updating and rendering may happen on any thread
// at once. Counter/Gauge/Histogram pointers stay valid as long as the Registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace callmesh::metrics {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// The label value of the shared series beyond a family's max_series.
inline constexpr char kOverflowLabelValue[] = "_overflow";
inline constexpr size_t kDefaultMaxSeries = 1000;

// A monotonically increasing count.
class Counter {
 public:
  void Increment(uint64_t by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(int64_t value) { value_.store(value, std::memory_order_relaxed); }
  void Add(int64_t delta) { value_.fetch_add(delta, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted in buckets with fixed upper bounds (cumulative when rendered).
class Histogram {
 public:
  // `bounds`: strictly increasing finite upper bounds; +Inf is implied.
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);
  // Seconds, the unit of every duration metric.
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<uint64_t> buckets;  // not cumulative; one per bound plus +Inf
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* const bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Bucket bounds for latencies in seconds: 0.5 ms to 60 s.
std::vector<double> LatencyBuckets();
// Bucket bounds for sizes and counts: 1, 2, 4, ... 4096.
std::vector<double> SizeBuckets();

// A metric and its series, one per label set.
template <typename Series>
class Family {
 public:
  // The series of `values` (as many as the family has label names), created on first use;
  // the overflow series beyond max_series. Takes a lock: resolve once, keep the pointer.
  Series* With(const LabelValues& values);
  // Label sets that were folded into the overflow series.
  uint64_t overflowed() const { return overflowed_.load(); }

 private:
  friend class Registry;
  Family(std::vector<std::string> label_names, size_t max_series, std::vector<double> bounds = {});
  std::unique_ptr<Series> NewSeries();

  const std::vector<std::string> label_names_;
  const size_t max_series_;
  const std::vector<double> bounds_;  // histograms only
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<Series>> series_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> overflowed_{0};
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Reports one sample of a computed metric: label values (in label-name order) and the value.
using EmitSample = std::function<void(const LabelValues& values, double value)>;

class Registry {
 public:
  enum class Type { kCounter, kGauge };

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {},
                            size_t max_series = kDefaultMaxSeries);
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {},
                        size_t max_series = kDefaultMaxSeries);
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds,
                                size_t max_series = kDefaultMaxSeries);
  // A metric computed at each scrape: `collect` is called during Render (on the scraping thread)
  // and emits its samples; at most max_series are rendered. `collect` must be thread-safe and must
  // not call back into this registry.
  void AddComputed(const std::string& name, const std::string& help, Type type,
                   std::vector<std::string> label_names,
                   std::function<void(const EmitSample&)> collect,
                   size_t max_series = kDefaultMaxSeries);

  // Every metric in the Prometheus text format, in registration order, series sorted by labels.
  std::string Render() const;

 private:
  struct Entry;
  void Register(std::unique_ptr<Entry> entry);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// Prometheus' name rules; exposed for tests.
bool IsValidMetricName(const std::string& name);
bool IsValidLabelName(const std::string& name);

}  // namespace callmesh::metrics

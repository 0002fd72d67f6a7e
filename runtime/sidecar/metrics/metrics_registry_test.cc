#include "runtime/sidecar/metrics/metrics_registry.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace callmesh::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsRegistry, RendersCountersWithHelpTypeAndSortedLabels) {
  Registry registry;
  CounterFamily* attempts =
      registry.AddCounter("callmesh_attempts_total", "Attempts, by code.", {"code"});
  attempts->With({"UNAVAILABLE"})->Increment(2);
  attempts->With({"OK"})->Increment();
  EXPECT_EQ(registry.Render(),
            "# HELP callmesh_attempts_total Attempts, by code.\n"
            "# TYPE callmesh_attempts_total counter\n"
            "callmesh_attempts_total{code=\"OK\"} 1\n"
            "callmesh_attempts_total{code=\"UNAVAILABLE\"} 2\n");
}

TEST(MetricsRegistry, SameLabelsGiveTheSameSeries) {
  Registry registry;
  GaugeFamily* gauges = registry.AddGauge("g", "A gauge.", {"a", "b"});
  EXPECT_EQ(gauges->With({"x", "y"}), gauges->With({"x", "y"}));
  EXPECT_NE(gauges->With({"x", "y"}), gauges->With({"y", "x"}));
}

TEST(MetricsRegistry, GaugesGoUpAndDownAndUnlabelledHaveNoBraces) {
  Registry registry;
  Gauge* gauge = registry.AddGauge("callmesh_pending", "Pending.")->With({});
  gauge->Add(5);
  gauge->Add(-7);
  EXPECT_THAT(registry.Render(), HasSubstr("\ncallmesh_pending -2\n"));
  gauge->Set(3);
  EXPECT_THAT(registry.Render(), HasSubstr("\ncallmesh_pending 3\n"));
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry registry;
  Histogram* histogram =
      registry.AddHistogram("latency_seconds", "Latency.", {"m"}, {0.1, 1})->With({"Get"});
  histogram->Observe(0.05);
  histogram->Observe(0.1);  // an observation equal to a bound falls in that bucket
  histogram->Observe(0.5);
  histogram->Observe(7);
  EXPECT_EQ(registry.Render(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{m=\"Get\",le=\"0.1\"} 2\n"
            "latency_seconds_bucket{m=\"Get\",le=\"1\"} 3\n"
            "latency_seconds_bucket{m=\"Get\",le=\"+Inf\"} 4\n"
            "latency_seconds_sum{m=\"Get\"} 7.65\n"
            "latency_seconds_count{m=\"Get\"} 4\n");
}

TEST(MetricsRegistry, EscapesLabelValuesAndHelp) {
  Registry registry;
  registry.AddCounter("c_total", "Line one\nback\\slash", {"v"})->With({"a\"b\\c\nd"})->Increment();
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# HELP c_total Line one\\nback\\\\slash\n"));
  EXPECT_THAT(text, HasSubstr("c_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(MetricsRegistry, CardinalityIsBoundedByAnOverflowSeries) {
  Registry registry;
  CounterFamily* family = registry.AddCounter("bounded_total", "Bounded.", {"target"}, 3);
  for (int i = 0; i < 10; ++i) family->With({"t" + std::to_string(i)})->Increment();
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("bounded_total{target=\"t0\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bounded_total{target=\"t1\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("t2")));
  EXPECT_THAT(text, HasSubstr("bounded_total{target=\"_overflow\"} 8\n"));
  EXPECT_EQ(family->overflowed(), 8u);
  // A series that exists keeps its own slot.
  family->With({"t0"})->Increment();
  EXPECT_THAT(registry.Render(), HasSubstr("bounded_total{target=\"t0\"} 2\n"));
}

TEST(MetricsRegistry, ComputedMetricsAreCollectedAtEachRenderAndBounded) {
  Registry registry;
  int calls = 0;
  registry.AddComputed(
      "callmesh_in_flight", "In flight.", Registry::Type::kGauge, {"target"},
      [&calls](const EmitSample& emit) {
        ++calls;
        emit({"b"}, 2);
        emit({"a"}, 1.5);
        emit({"c"}, 9);  // beyond max_series
      },
      2);
  registry.AddComputed("up_seconds_total", "Up.", Registry::Type::kCounter, {},
                       [](const EmitSample& emit) { emit({}, 12); });
  EXPECT_EQ(registry.Render(),
            "# HELP callmesh_in_flight In flight.\n"
            "# TYPE callmesh_in_flight gauge\n"
            "callmesh_in_flight{target=\"a\"} 1.5\n"
            "callmesh_in_flight{target=\"b\"} 2\n"
            "# HELP up_seconds_total Up.\n"
            "# TYPE up_seconds_total counter\n"
            "up_seconds_total 12\n");
  registry.Render();
  EXPECT_EQ(calls, 2);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  CounterFamily* counters = registry.AddCounter("hits_total", "Hits.", {"k"});
  Histogram* histogram = registry.AddHistogram("h", "H.", {}, {1})->With({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        counters->With({i % 2 == 0 ? "even" : "odd"})->Increment();
        histogram->Observe(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counters->With({"even"})->value() + counters->With({"odd"})->value(), 40000u);
  const Histogram::Snapshot snapshot = histogram->Read();
  EXPECT_EQ(snapshot.count, 40000u);
  EXPECT_EQ(snapshot.sum, 40000.0);
}

TEST(MetricsRegistry, NamesFollowPrometheusRules) {
  EXPECT_TRUE(IsValidMetricName("callmesh_attempts_total"));
  EXPECT_TRUE(IsValidMetricName("job:rate5m"));
  EXPECT_FALSE(IsValidMetricName("9lives"));
  EXPECT_FALSE(IsValidMetricName("has-dash"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("grpc_code"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(MetricsRegistryDeathTest, MisuseAbortsNamingTheProblem) {
  Registry registry;
  registry.AddCounter("dup_total", "Once.");
  EXPECT_DEATH(registry.AddCounter("dup_total", "Twice."), "dup_total registered twice");
  EXPECT_DEATH(registry.AddGauge("bad-name", "Bad."), "invalid metric name bad-name");
  EXPECT_DEATH(registry.AddHistogram("h2", "H.", {"le"}, {1}), "label named le");
  EXPECT_DEATH(registry.AddCounter("c2_total", "C.", {"a"})->With({}), "needs 1 label values");
}

}  // namespace
}  // namespace callmesh::metrics

// The admin listener over real HTTP on loopback, the process metrics from /proc, and the
// sidecar's hot-path series.
#include <httplib.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sidecar/metrics/admin_server.h"
#include "runtime/sidecar/metrics/metrics_registry.h"
#include "runtime/sidecar/metrics/process_metrics.h"
#include "runtime/sidecar/metrics/sidecar_metrics.h"

namespace callmesh::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::unique_ptr<httplib::Client> ClientFor(const std::string& address) {
  return std::make_unique<httplib::Client>(absl::StrCat("http://", address));
}

TEST(AdminServer, ServesMetricsHealthzAndReadyz) {
  Registry registry;
  registry.AddCounter("served_total", "Served.")->With({})->Increment(3);
  bool ready = false;
  absl::StatusOr<std::unique_ptr<AdminServer>> server = AdminServer::Start(
      "127.0.0.1:0", &registry,
      [&ready] { return ready ? absl::OkStatus() : absl::UnavailableError("recovering"); });
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = ClientFor((*server)->address());

  httplib::Result metrics = client->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), StartsWith("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics->body, HasSubstr("\nserved_total 3\n"));

  httplib::Result healthz = client->Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);

  httplib::Result not_ready = client->Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_THAT(not_ready->body, HasSubstr("recovering"));
  ready = true;
  httplib::Result is_ready = client->Get("/readyz");
  ASSERT_TRUE(is_ready);
  EXPECT_EQ(is_ready->status, 200);

  httplib::Result missing = client->Get("/nothing");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(AdminServer, RefusesAPortInUseNamingTheAddress) {
  Registry registry;
  auto ready = [] { return absl::OkStatus(); };
  absl::StatusOr<std::unique_ptr<AdminServer>> first =
      AdminServer::Start("127.0.0.1:0", &registry, ready);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<AdminServer>> second =
      AdminServer::Start((*first)->address(), &registry, ready);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("admin_listen " + (*first)->address() + ": cannot listen there"));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
}

TEST(AdminServer, StopsRightAfterStart) {
  Registry registry;
  absl::StatusOr<std::unique_ptr<AdminServer>> server =
      AdminServer::Start("127.0.0.1:0", &registry, [] { return absl::OkStatus(); });
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->Stop();
  (*server)->Stop();  // idempotent
}

TEST(ProcessMetrics, ReadsCpuAndResidentMemoryOfThisProcess) {
  std::optional<ProcessStats> stats = ReadProcessStats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_GT(stats->resident_bytes, 0);
  EXPECT_GE(stats->virtual_bytes, stats->resident_bytes);
  EXPECT_GT(stats->start_time_seconds, 1.6e9);  // after 2020
  // Burn some CPU: the count must move.
  const double before = stats->cpu_seconds;
  volatile uint64_t sink = 0;
  while (ReadProcessStats()->cpu_seconds <= before) {
    for (int i = 0; i < 1000000; ++i) sink = sink + i;
  }
  Registry registry;
  AddProcessMetrics(&registry);
  const std::string text = registry.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("\nprocess_resident_memory_bytes "));
  EXPECT_THAT(text, HasSubstr("\nprocess_open_fds "));
}

TEST(SidecarMetrics, CountsAttemptsRetriesCompletionsAndJournalBatches) {
  SidecarMetrics metrics;
  metrics.AttemptFinished(14);
  metrics.AttemptFinished(14);
  metrics.RetryScheduled(14);
  metrics.AttemptFinished(0);
  metrics.AttemptFinished(99);  // not a gRPC code: UNKNOWN
  metrics.CallCompleted(v1::CALL_STATE_SUCCEEDED);
  metrics.CallCompleted(v1::CALL_STATE_RUNNING);  // not terminal: not counted
  metrics.JournalBatchWritten(3, absl::Milliseconds(2), /*synced=*/true);
  const std::string text = metrics.registry().Render();
  EXPECT_THAT(text, HasSubstr("callmesh_attempts_total{code=\"UNAVAILABLE\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_attempts_total{code=\"OK\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_attempts_total{code=\"UNKNOWN\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_retries_total{code=\"UNAVAILABLE\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_completions_total{state=\"SUCCEEDED\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_completions_total{state=\"FAILED\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("state=\"RUNNING\"")));
  EXPECT_THAT(text, HasSubstr("callmesh_journal_batch_size_bucket{le=\"4\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("callmesh_journal_write_seconds_count{synced=\"true\"} 1\n"));
}

}  // namespace
}  // namespace callmesh::metrics

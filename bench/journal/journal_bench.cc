// journal_bench: what group commit buys the call journal, on one disk, in one run.
//
//   bazel run -c opt //bench/journal:journal_bench -- --dir=/var/tmp/jb
//
// Three phases, each on a fresh journal in its own folder under --dir:
//   (a) serial:   one thread, AcceptSync after AcceptSync, fsync on (the disk's fsync rate);
//   (b) grouped:  --threads submitters calling AcceptSync at once, fsync on;
//   (c) no-sync:  as (b), durability NONE (written to the OS, not synced).
//   (d) lifecycle: --threads submitters, each taking calls through the journal's whole part of
//                 an async call with a callback: AcceptSync, UpdateCall (attempt 1 running),
//                 Complete with a reply of --payload_bytes (delivery PENDING), SetDelivery
//                 DELIVERED; fsync on. Latency is the whole lifecycle's.
// Prints calls/s, latency percentiles, batches and the ratio (b)/(a); for every phase also the
// process's CPU time and the bytes handed to write(2) (/proc/self/io wchar: the write-ahead log,
// flushes and compactions) per call.
#include <stdlib.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "runtime/common/cid.h"
#include "runtime/sidecar/journal/journal.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, dir, "",
          "Folder for the benchmark journals (a fresh one per phase below it). Default: a new "
          "temporary folder under /tmp, removed afterwards.");
ABSL_FLAG(int, serial_calls, 2000, "Accepts in the serial phase (a).");
ABSL_FLAG(int, concurrent_calls, 20000, "Accepts in each concurrent phase (b, c).");
ABSL_FLAG(int, threads, 64, "Concurrent submitters in phases (b) and (c).");
ABSL_FLAG(int, payload_bytes, 256, "Request payload size of each call.");
ABSL_FLAG(bool, keep, false, "Keep the journals after the run.");

namespace callmesh::sidecar {
namespace {

struct Result {
  std::string name;
  bool sync = false;
  int threads = 0;
  int calls = 0;
  absl::Duration elapsed;
  std::vector<absl::Duration> latencies;  // sorted
  Journal::Stats stats;
  double cpu_seconds = 0;
  uint64_t bytes_written = 0;

  double per_second() const { return calls / absl::ToDoubleSeconds(elapsed); }
  absl::Duration Percentile(double p) const {
    if (latencies.empty()) return absl::ZeroDuration();
    const size_t index = std::min(latencies.size() - 1, static_cast<size_t>(p * latencies.size()));
    return latencies[index];
  }
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// Bytes this process handed to write(2) and its kin so far (/proc/self/io "wchar").
uint64_t BytesWritten() {
  std::ifstream io("/proc/self/io");
  std::string field;
  uint64_t value = 0;
  while (io >> field >> value) {
    if (field == "wchar:") return value;
  }
  return 0;
}

enum class Work { kAccept, kLifecycle };

// One call through the journal as `work` says; false if any step failed.
bool RunOne(Journal& journal, Work work, v1::CallEnvelope envelope, const std::string& reply) {
  const std::string cid = envelope.cid();
  absl::StatusOr<Journal::AcceptResult> accepted = journal.AcceptSync(std::move(envelope));
  if (!accepted.ok()) return false;
  if (work == Work::kAccept) return true;
  v1::Call running;
  running.mutable_envelope()->set_cid(cid);
  running.set_state(v1::CALL_STATE_RUNNING);
  running.set_attempts(1);
  if (!journal.UpdateCall(running).ok()) return false;
  v1::Completion completion;
  completion.set_state(v1::CALL_STATE_SUCCEEDED);
  completion.set_reply(reply);
  if (!journal.Complete(cid, std::move(completion), v1::DELIVERY_STATE_PENDING).ok()) return false;
  return journal.SetDelivery(cid, v1::DELIVERY_STATE_DELIVERED, nullptr).ok();
}

std::string FormatLatency(absl::Duration d) {
  return absl::StrFormat("%.3f ms", absl::ToDoubleMilliseconds(d));
}

Result Run(const std::string& name, const std::string& dir, bool sync, int threads, int calls,
           Work work = Work::kAccept) {
  JournalOptions options;
  options.dir = dir;
  options.sync = sync;
  absl::StatusOr<std::unique_ptr<Journal>> opened = Journal::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "journal_bench: %s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  Journal& journal = **opened;
  CidGenerator cids;
  const std::string payload(absl::GetFlag(FLAGS_payload_bytes), 'x');
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::vector<absl::Duration>> latencies(threads);

  const double cpu_before = CpuSeconds();
  const uint64_t written_before = BytesWritten();
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      latencies[t].reserve(calls / threads + 1);
      while (next.fetch_add(1) < calls) {
        v1::CallEnvelope envelope;
        envelope.set_cid(cids.Next());
        envelope.set_kind(v1::CALL_KIND_INVOKE_ASYNC);
        envelope.set_service("greeter");
        envelope.set_method("helloworld.Greeter/SayHello");
        envelope.set_source("bench");
        envelope.set_payload(payload);
        const absl::Time begin = absl::Now();
        envelope.mutable_accepted_at()->set_seconds(absl::ToUnixSeconds(begin));
        const bool ok = RunOne(journal, work, std::move(envelope), payload);
        latencies[t].push_back(absl::Now() - begin);
        if (!ok) ++failures;
      }
    });
  }
  for (std::thread& worker : workers) worker.join();

  Result result;
  result.elapsed = absl::Now() - start;
  result.cpu_seconds = CpuSeconds() - cpu_before;
  result.bytes_written = BytesWritten() - written_before;
  result.name = name;
  result.sync = sync;
  result.threads = threads;
  result.calls = calls;
  result.stats = journal.stats();
  for (auto& per_thread : latencies) {
    result.latencies.insert(result.latencies.end(), per_thread.begin(), per_thread.end());
  }
  std::sort(result.latencies.begin(), result.latencies.end());
  if (failures.load() > 0) {
    std::fprintf(stderr, "journal_bench: %s: %d accepts failed\n", name.c_str(), failures.load());
    std::exit(1);
  }
  return result;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Measures group commit of the call journal: see the file comment.");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_level(spdlog::level::warn);

  std::string dir = absl::GetFlag(FLAGS_dir);
  bool remove = !absl::GetFlag(FLAGS_keep);
  if (dir.empty()) {
    char pattern[] = "/tmp/journal_bench.XXXXXX";
    if (mkdtemp(pattern) == nullptr) {
      std::perror("journal_bench: mkdtemp");
      return 1;
    }
    dir = pattern;
  } else {
    std::filesystem::create_directories(dir);
    remove = false;  // a folder the user chose: leave it
  }
  const std::string run = absl::StrCat(dir, "/run-", absl::ToUnixMillis(absl::Now()));
  const int threads = std::max(1, absl::GetFlag(FLAGS_threads));
  const int concurrent = absl::GetFlag(FLAGS_concurrent_calls);

  std::vector<Result> results;
  results.push_back(
      Run("(a) serial, fsync", run + "/a", true, 1, absl::GetFlag(FLAGS_serial_calls)));
  results.push_back(Run(absl::StrCat("(b) ", threads, " submitters, fsync"), run + "/b", true,
                        threads, concurrent));
  results.push_back(Run(absl::StrCat("(c) ", threads, " submitters, no sync"), run + "/c", false,
                        threads, concurrent));
  results.push_back(Run(absl::StrCat("(d) ", threads, " submitters, lifecycle"), run + "/d", true,
                        threads, concurrent, Work::kLifecycle));

  std::printf("journal_bench: %s, payload %d bytes, journals in %s\n\n",
#ifdef NDEBUG
              "optimized build",
#else
              "NOT an optimized build (use -c opt)",
#endif
              absl::GetFlag(FLAGS_payload_bytes), run.c_str());
  std::printf("%-28s %8s %10s %10s %11s %11s %9s %12s %11s %12s\n", "phase", "calls", "seconds",
              "calls/s", "p50", "p99", "batches", "writes/batch", "CPU us/call", "bytes/call");
  for (const Result& r : results) {
    std::printf(
        "%-28s %8d %10.3f %10.0f %11s %11s %9llu %12.1f %11.1f %12.0f\n", r.name.c_str(), r.calls,
        absl::ToDoubleSeconds(r.elapsed), r.per_second(), FormatLatency(r.Percentile(0.50)).c_str(),
        FormatLatency(r.Percentile(0.99)).c_str(), static_cast<unsigned long long>(r.stats.batches),
        r.stats.batches == 0 ? 0.0 : static_cast<double>(r.stats.writes) / r.stats.batches,
        r.cpu_seconds * 1e6 / r.calls, static_cast<double>(r.bytes_written) / r.calls);
  }
  std::printf("\ngroup commit: (b)/(a) = %.1fx the serial fsync rate; largest batch %llu calls\n",
              results[1].per_second() / results[0].per_second(),
              static_cast<unsigned long long>(results[1].stats.largest_batch));
  std::printf("price of durability: (c)/(b) = %.1fx\n",
              results[2].per_second() / results[1].per_second());

  if (remove) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}

}  // namespace
}  // namespace callmesh::sidecar

int main(int argc, char** argv) { return callmesh::sidecar::Main(argc, argv); }

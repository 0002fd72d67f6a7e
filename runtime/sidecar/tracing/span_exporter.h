// Sends finished spans to an OpenTelemetry collector with OTLP/HTTP JSON, off the hot path:
// Export only queues the span (a mutex and a push); a thread of the exporter sends batches of up
// to `max_batch` spans, every `flush_interval` or as soon as a batch is full.
//
//   SpanExporter exporter({.endpoint = "http://127.0.0.1:4318/v1/traces", .service_name = "app"});
//   exporter.Export(std::move(span));
//
// The queue is bounded (`max_queued`): when the collector is slow or away, spans beyond it are
// dropped and counted, never waited for, so calls are unaffected; a batch the collector refuses
// or that cannot be sent is dropped and counted too (no retry: traces are best effort).
//
// Thread-safe. The destructor sends one more batch of what is queued (one try), drops (counts)
// the rest, and joins the thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/sidecar/tracing/http_endpoint.h"
#include "runtime/sidecar/tracing/span.h"

namespace callmesh::tracing {

class SpanExporter {
 public:
  struct Options {
    // OTLP/HTTP traces URL, e.g. "http://127.0.0.1:4318/v1/traces" (see ParseHttpEndpoint).
    std::string endpoint;
    // Resource attribute service.name of every span.
    std::string service_name = "callmeshd";
    // Spans held while waiting to be sent; more are dropped.
    size_t max_queued = 4096;
    // Spans per request.
    size_t max_batch = 512;
    // Longest a span waits in the queue before it is sent (real time).
    absl::Duration flush_interval = absl::Seconds(1);
    // The longest one export may take: connecting, sending and reading the reply.
    absl::Duration timeout = absl::Seconds(5);
  };

  // INVALID_ARGUMENT for a malformed endpoint.
  static absl::StatusOr<std::unique_ptr<SpanExporter>> Create(Options options);
  ~SpanExporter();
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Queues `span`, or drops it (counted) when the queue is full. Never blocks on the network.
  void Export(Span span);

  // Sends everything queued now and returns once that request has finished (or failed). For
  // tests and shutdown.
  void Flush();

  // Spans the collector accepted (HTTP 2xx).
  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  // Spans dropped because the queue was full.
  uint64_t dropped_queue_full() const {
    return dropped_queue_full_.load(std::memory_order_relaxed);
  }
  // Spans lost because their request failed (no collector, refused, timed out).
  uint64_t dropped_export_failed() const {
    return dropped_export_failed_.load(std::memory_order_relaxed);
  }

 private:
  SpanExporter(Options options, HttpEndpoint endpoint);
  void Run();
  // Sends one batch; counts it exported or failed.
  void Send(const std::vector<Span>& batch);

  const Options options_;
  const HttpEndpoint endpoint_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_queue_full_{0};
  std::atomic<uint64_t> dropped_export_failed_{0};

  absl::Mutex mu_;
  std::deque<Span> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Flush requests made, and served by the thread (each served once the queue seen was sent).
  uint64_t flushes_requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flushes_done_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace callmesh::tracing

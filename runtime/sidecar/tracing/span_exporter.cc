#include "runtime/sidecar/tracing/span_exporter.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/common/http/http_client.h"
#include "runtime/sidecar/tracing/otlp_json.h"
#include "spdlog/spdlog.h"

namespace callmesh::tracing {

absl::StatusOr<std::unique_ptr<SpanExporter>> SpanExporter::Create(Options options) {
  absl::StatusOr<HttpEndpoint> endpoint = ParseHttpEndpoint(options.endpoint, "tracing.endpoint");
  if (!endpoint.ok()) return endpoint.status();
  return std::unique_ptr<SpanExporter>(new SpanExporter(std::move(options), *std::move(endpoint)));
}

SpanExporter::SpanExporter(Options options, HttpEndpoint endpoint)
    : options_(std::move(options)), endpoint_(std::move(endpoint)) {
  thread_ = std::thread([this] { Run(); });
}

SpanExporter::~SpanExporter() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void SpanExporter::Export(Span span) {
  absl::MutexLock lock(&mu_);
  if (queue_.size() >= options_.max_queued) {
    dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  queue_.push_back(std::move(span));
}

void SpanExporter::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t ticket = ++flushes_requested_;
  const auto served = [this, ticket]()
                          ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return flushes_done_ >= ticket; };
  mu_.Await(absl::Condition(&served));
}

void SpanExporter::Run() {
  for (;;) {
    std::vector<Span> batch;
    bool stop = false;
    uint64_t flush_ticket = 0;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || queue_.size() >= options_.max_batch ||
               flushes_requested_ > flushes_done_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&ready), options_.flush_interval);
      stop = stopping_;
      flush_ticket = flushes_requested_;
      const size_t n = std::min(queue_.size(), options_.max_batch);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) Send(batch);
    absl::MutexLock lock(&mu_);
    // A flush is served once everything queued when it was asked has been sent (while spans
    // remain, the pending flush keeps the loop sending without waiting).
    if (queue_.empty()) flushes_done_ = std::max(flushes_done_, flush_ticket);
    if (stop) {
      // One try at shutdown: what did not fit in it is dropped (counted), so a collector that is
      // away cannot hold up the sidecar's exit.
      dropped_export_failed_.fetch_add(queue_.size(), std::memory_order_relaxed);
      queue_.clear();
      flushes_done_ = flushes_requested_;
      return;
    }
  }
}

void SpanExporter::Send(const std::vector<Span>& batch) {
  absl::StatusOr<http::HttpReply> reply =
      http::HttpExchange({.host = endpoint_.host,
                          .port = endpoint_.port,
                          .method = "POST",
                          .path = endpoint_.path,
                          .body = OtlpJson(batch, options_.service_name),
                          .content_type = "application/json",
                          .timeout = options_.timeout});
  if (reply.ok() && reply->status >= 200 && reply->status < 300) {
    exported_.fetch_add(batch.size(), std::memory_order_relaxed);
    return;
  }
  dropped_export_failed_.fetch_add(batch.size(), std::memory_order_relaxed);
  spdlog::debug("tracing: {} span(s) not exported: {}", batch.size(),
                reply.ok() ? absl::StrCat("HTTP ", reply->status, " from ",
                                          endpoint_.scheme_host_port, endpoint_.path)
                           : std::string(reply.status().message()));
}

}  // namespace callmesh::tracing

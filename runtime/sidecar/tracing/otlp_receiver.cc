#include "runtime/sidecar/tracing/otlp_receiver.h"

#include <httplib.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace callmesh::tracing {
namespace {

namespace pb = google::protobuf;

const pb::Value& Field(const pb::Value& value, const std::string& key) {
  static const pb::Value* const kNull = new pb::Value();
  if (!value.has_struct_value()) return *kNull;
  auto it = value.struct_value().fields().find(key);
  return it == value.struct_value().fields().end() ? *kNull : it->second;
}

// {"key": k, "value": {"stringValue": v} | {"intValue": "n"}} list into a map.
std::map<std::string, std::string> Attributes(const pb::Value& list) {
  std::map<std::string, std::string> out;
  for (const pb::Value& kv : list.list_value().values()) {
    const pb::Value& value = Field(kv, "value");
    const pb::Value& text = Field(value, "stringValue").has_string_value()
                                ? Field(value, "stringValue")
                                : Field(value, "intValue");
    out[Field(kv, "key").string_value()] = text.string_value();
  }
  return out;
}

}  // namespace

OtlpReceiver::OtlpReceiver() : http_(std::make_unique<httplib::Server>()) {
  http_->Post("/v1/traces", [this](const httplib::Request& request, httplib::Response& response) {
    if (request.get_header_value("Content-Type") != "application/json") {
      response.status = 415;
      return;
    }
    Receive(request.body);
    response.set_content("{}", "application/json");
  });
  port_ = http_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  // stop() does nothing until the listening loop runs: wait for it.
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

OtlpReceiver::~OtlpReceiver() {
  http_->stop();
  thread_.join();
}

std::string OtlpReceiver::url() const {
  return absl::StrCat("http://127.0.0.1:", port_, "/v1/traces");
}

void OtlpReceiver::Receive(const std::string& body) {
  pb::Value root;
  if (!pb::util::JsonStringToMessage(body, &root).ok() || !root.has_struct_value()) {
    absl::MutexLock lock(&mu_);
    malformed_.push_back(body);
    return;
  }
  std::vector<ReceivedSpan> received;
  for (const pb::Value& resource_spans : Field(root, "resourceSpans").list_value().values()) {
    const std::map<std::string, std::string> resource =
        Attributes(Field(Field(resource_spans, "resource"), "attributes"));
    for (const pb::Value& scope_spans : Field(resource_spans, "scopeSpans").list_value().values()) {
      for (const pb::Value& s : Field(scope_spans, "spans").list_value().values()) {
        ReceivedSpan& span = received.emplace_back();
        span.trace_id = Field(s, "traceId").string_value();
        span.span_id = Field(s, "spanId").string_value();
        span.parent_span_id = Field(s, "parentSpanId").string_value();
        span.name = Field(s, "name").string_value();
        span.kind = static_cast<int>(Field(s, "kind").number_value());
        span.attributes = Attributes(Field(s, "attributes"));
        span.status_code = static_cast<int>(Field(Field(s, "status"), "code").number_value());
        span.start_unix_nanos = Field(s, "startTimeUnixNano").string_value();
        span.end_unix_nanos = Field(s, "endTimeUnixNano").string_value();
        auto name = resource.find("service.name");
        if (name != resource.end()) span.service_name = name->second;
      }
    }
  }
  absl::MutexLock lock(&mu_);
  for (ReceivedSpan& span : received) spans_.push_back(std::move(span));
}

bool OtlpReceiver::AwaitSpans(size_t n) {
  absl::MutexLock lock(&mu_);
  const auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spans_.size() >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Minutes(1));
}

std::vector<ReceivedSpan> OtlpReceiver::spans() const {
  absl::MutexLock lock(&mu_);
  return spans_;
}

std::vector<std::string> OtlpReceiver::malformed() const {
  absl::MutexLock lock(&mu_);
  return malformed_;
}

}  // namespace callmesh::tracing

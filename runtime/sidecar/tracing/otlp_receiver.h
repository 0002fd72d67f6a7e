// A test OTLP/HTTP collector: a real HTTP server on a free loopback port that accepts
// POST /v1/traces with a JSON body, parses it (protobuf's JSON parser, independent of the
// exporter's encoder) and keeps the spans.
//
//   OtlpReceiver receiver;
//   config.mutable_tracing()->set_endpoint(receiver.url());
//   ...
//   ASSERT_TRUE(receiver.AwaitSpans(4));
//   for (const ReceivedSpan& span : receiver.spans()) ...
//
// Thread-safe. Test support only.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace callmesh::tracing {

struct ReceivedSpan {
  std::string trace_id;
  std::string span_id;
  std::string parent_span_id;
  std::string name;
  int kind = 0;
  // stringValue attributes as they are; intValue ones as their decimal text.
  std::map<std::string, std::string> attributes;
  int status_code = 0;
  // Resource attribute service.name of the export the span came in.
  std::string service_name;
  std::string start_unix_nanos;
  std::string end_unix_nanos;
};

class OtlpReceiver {
 public:
  OtlpReceiver();
  ~OtlpReceiver();

  // "http://127.0.0.1:<port>/v1/traces".
  std::string url() const;
  // True once at least `n` spans have arrived (false after a minute without them: a hang guard,
  // not a timing assertion).
  bool AwaitSpans(size_t n);
  std::vector<ReceivedSpan> spans() const;
  // Bodies that were not valid OTLP JSON (each answered 400); a test expects none.
  std::vector<std::string> malformed() const;

 private:
  void Receive(const std::string& body);

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  std::vector<ReceivedSpan> spans_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> malformed_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::tracing

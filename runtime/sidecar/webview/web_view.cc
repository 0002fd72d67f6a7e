#include "runtime/sidecar/webview/web_view.h"

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "runtime/common/json_string.h"
#include "runtime/sidecar/tracing/span.h"
#include "runtime/sidecar/webview/web_page.h"

namespace callmesh::webview {
namespace {

constexpr char kJson[] = "application/json";
// Calls a list answers with at most.
constexpr uint32_t kMaxCalls = 500;

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "null";
  return out;
}

void Fail(http::HttpResponse& response, int http_status, absl::string_view message) {
  std::string body = "{\"error\":";
  AppendJsonString(&body, message);
  body.push_back('}');
  response.Set(http_status, kJson, std::move(body));
}

int HttpStatusOf(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
      return 409;
    default:
      return 503;
  }
}

// "RUNNING" or "CALL_STATE_RUNNING" (any case); nullopt for anything else.
std::optional<v1::CallState> ParseState(std::string name) {
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!absl::StartsWith(name, "CALL_STATE_")) name = absl::StrCat("CALL_STATE_", name);
  v1::CallState state;
  if (!v1::CallState_Parse(name, &state) || state == v1::CALL_STATE_UNSPECIFIED) {
    return std::nullopt;
  }
  return state;
}

// The call as the page shows it: no payload bytes, no reply bytes.
v1::Call Shown(v1::Call call) {
  call.mutable_envelope()->clear_payload();
  call.mutable_completion()->clear_reply();
  if (!call.has_completion() || call.completion().cid().empty()) call.clear_completion();
  return call;
}

}  // namespace

WebView::WebView(Sources sources) : sources_(std::move(sources)) {}

WebView::~WebView() { Stop(); }

void WebView::Stop() { stopping_.store(true); }

void WebView::AddRoutes(http::HttpRouter* router) {
  router->Handle("GET", "/ui", [this](const http::HttpRequest&, http::HttpResponse& response) {
    response.Set(200, "text/html; charset=utf-8", WebPage(sources_.name));
  });

  router->Handle("GET", "/ui/api/services",
                 [this](const http::HttpRequest&, http::HttpResponse& response) {
                   std::string body = "{\"services\":[";
                   bool first = true;
                   for (const v1::ServiceInfo& service : sources_.registry->List()) {
                     if (!first) body.push_back(',');
                     first = false;
                     body += ToJson(service);
                   }
                   body += "]}";
                   response.Set(200, kJson, std::move(body));
                 });

  router->Handle(
      "GET", "/ui/api/calls",
      [this](const http::HttpRequest& request, http::HttpResponse& response) {
        std::vector<v1::Call> calls;
        if (const std::string cid = request.QueryValue("cid"); !cid.empty()) {
          absl::StatusOr<v1::Call> call = sources_.store->GetCall(cid);
          if (!call.ok() && !absl::IsNotFound(call.status())) {
            return Fail(response, HttpStatusOf(call.status()), call.status().message());
          }
          if (call.ok()) calls.push_back(*std::move(call));
        } else {
          sidecar::CallStore::ListFilter filter;
          filter.service = request.QueryValue("service");
          filter.source = request.QueryValue("source");
          if (const std::string state = request.QueryValue("state"); !state.empty()) {
            std::optional<v1::CallState> parsed = ParseState(state);
            if (!parsed.has_value()) {
              return Fail(
                  response, 400,
                  absl::StrCat("state: unknown call state \"", state,
                               "\" (ACCEPTED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED)"));
            }
            filter.states.push_back(*parsed);
          }
          uint32_t limit = 100;
          if (request.query.count("limit") > 0 &&
              (!absl::SimpleAtoi(request.QueryValue("limit"), &limit) || limit == 0 ||
               limit > kMaxCalls)) {
            return Fail(response, 400,
                        absl::StrCat("limit: must be a number from 1 to ", kMaxCalls, ", got \"",
                                     request.QueryValue("limit"), "\""));
          }
          auto page = sources_.store->ListCalls(filter, limit, "");
          if (!page.ok())
            return Fail(response, HttpStatusOf(page.status()), page.status().message());
          calls = std::move(page->first);
        }
        std::string body = "{\"calls\":[";
        for (size_t i = 0; i < calls.size(); ++i) {
          if (i > 0) body.push_back(',');
          v1::Call call = Shown(std::move(calls[i]));
          sources_.dispatcher->DescribeProgress(&call);
          body += ToJson(call);
        }
        body += "]}";
        response.Set(200, kJson, std::move(body));
      });

  router->Handle("GET", "/ui/api/calls/*",
                 [this](const http::HttpRequest& request, http::HttpResponse& response) {
                   absl::StatusOr<v1::Call> stored = sources_.store->GetCall(request.captures[0]);
                   if (!stored.ok()) {
                     return Fail(response, HttpStatusOf(stored.status()),
                                 stored.status().message());
                   }
                   v1::Call call = Shown(*std::move(stored));
                   sources_.dispatcher->DescribeProgress(&call);
                   std::optional<tracing::SpanContext> trace =
                       tracing::ParseTraceparent(call.envelope().traceparent());
                   std::string body = "{\"call\":" + ToJson(call) + ",\"traceId\":";
                   AppendJsonString(&body, trace.has_value() ? trace->trace_id : "");
                   body.push_back('}');
                   response.Set(200, kJson, std::move(body));
                 });

  router->Handle("GET", "/ui/api/dead-letters",
                 [this](const http::HttpRequest&, http::HttpResponse& response) {
                   auto page = sources_.store->ListDeadLetters(kMaxCalls, "");
                   if (!page.ok())
                     return Fail(response, HttpStatusOf(page.status()), page.status().message());
                   std::string body = "{\"deadLetters\":[";
                   for (size_t i = 0; i < page->first.size(); ++i) {
                     if (i > 0) body.push_back(',');
                     v1::DeadLetter letter = std::move(page->first[i]);
                     letter.mutable_completion()->clear_reply();
                     body += ToJson(letter);
                   }
                   body += "]}";
                   response.Set(200, kJson, std::move(body));
                 });

  router->Handle("POST", "/ui/api/dead-letters/*/redrive",
                 [this](const http::HttpRequest& request, http::HttpResponse& response) {
                   const std::string cid = request.captures[0];
                   if (absl::Status s = sources_.deliverer->Redrive(cid); !s.ok()) {
                     return Fail(response, HttpStatusOf(s), s.message());
                   }
                   std::string body = "{\"redriven\":";
                   AppendJsonString(&body, cid);
                   body.push_back('}');
                   response.Set(200, kJson, std::move(body));
                 });

  router->Handle(
      "GET", "/ui/events", [this](const http::HttpRequest&, http::HttpResponse& response) {
        if (stopping_.load()) return Fail(response, 503, "the sidecar is shutting down");
        // One stream's state, shared with the hub's wake-up (which only sets a flag).
        struct Stream {
          absl::Mutex mu;
          bool woken ABSL_GUARDED_BY(mu) = false;
          uint64_t after = 0;
          uint64_t watcher = 0;
        };
        auto stream = std::make_shared<Stream>();
        stream->after = sources_.store->last_sequence();
        stream->watcher = sources_.hub->AddWatcher([stream] {
          absl::MutexLock lock(&stream->mu);
          stream->woken = true;
        });
        response.content_type = "text/event-stream";
        response.headers.emplace_back("Cache-Control", "no-cache");
        response.stream = [this, stream](std::string* events) {
          {
            absl::MutexLock lock(&stream->mu);
            stream->mu.AwaitWithTimeout(absl::Condition(&stream->woken), absl::Seconds(1));
            stream->woken = false;
          }
          if (stopping_.load()) return false;
          auto completions = sources_.store->CompletionsAfter(stream->after, 100);
          if (completions.ok()) {
            for (const v1::Completion& completion : *completions) {
              stream->after = completion.sequence();
              absl::StrAppend(events, "event: completion\ndata: {\"cid\":");
              AppendJsonString(events, completion.cid());
              absl::StrAppend(events, ",\"state\":\"", v1::CallState_Name(completion.state()),
                              "\"}\n\n");
            }
          }
          if (events->empty()) *events = "event: tick\ndata: {}\n\n";
          return true;
        };
        response.on_stream_end = [this, stream] { sources_.hub->RemoveWatcher(stream->watcher); };
      });
}

}  // namespace callmesh::webview

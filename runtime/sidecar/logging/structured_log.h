// Structured logs: log lines that carry the fields of a call (cid, source, service, method,
// attempt, code, duration), written as text ("message cid=... service=...") or, with
// `log_format: json`, as one JSON object per line:
//
//   {"time":"2026-11-30T11:52:03.123456Z","level":"info","message":"call",
//    "cid":"...","source":"app","service":"greeter","method":"/greeter.v1.Greeter/SayHello",
//    "code":"OK","duration_ms":1.234}
//
//   UseLogFormat(LogFormat::kJson);        // once, at start, before other threads log
//   LogEvent(spdlog::level::info, {.cid = cid, .service = "greeter"}, "call");
//
// Plain spdlog calls keep working: in JSON their text is the message, and a leading "[cid=X] "
// (the sidecar's convention) becomes the "cid" field.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "spdlog/formatter.h"
#include "spdlog/spdlog.h"

namespace callmesh::logging {

// The fields of a call a log line may carry; empty or unset ones are left out.
struct LogFields {
  std::string cid;
  std::string source;
  std::string service;
  std::string method;
  std::optional<uint32_t> attempt;
  std::optional<int> code;  // gRPC status code, written by name ("UNAVAILABLE")
  std::optional<absl::Duration> duration;
};

enum class LogFormat { kText, kJson };

// "text" or "json"; nullopt for anything else.
std::optional<LogFormat> ParseLogFormat(absl::string_view name);

// Sets the format of every spdlog logger (the default one included).
void UseLogFormat(LogFormat format);

// Logs `message` with `fields` at `level` on spdlog's default logger, in the current format.
void LogEvent(spdlog::level::level_enum level, const LogFields& fields, absl::string_view message);

// spdlog formatter writing one JSON object per line: time (UTC, RFC 3339, microseconds), level,
// message, and the fields of the LogEvent being written on this thread, if any.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
  std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace callmesh::logging

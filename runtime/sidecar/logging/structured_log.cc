#include "runtime/sidecar/logging/structured_log.h"

#include <atomic>
#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/common/json_string.h"

namespace callmesh::logging {
namespace {

std::atomic<bool> json_logs{false};
// The fields of the LogEvent being written on this thread (spdlog's default sinks format on the
// logging thread, inside the call).
thread_local const LogFields* current_fields = nullptr;

std::string CodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

void AppendField(std::string* out, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  absl::StrAppend(out, ",\"", key, "\":");
  AppendJsonString(out, value);
}

std::string TextSuffix(const LogFields& fields) {
  std::string out;
  const auto add = [&out](absl::string_view key, absl::string_view value) {
    if (!value.empty()) absl::StrAppend(&out, " ", key, "=", value);
  };
  add("cid", fields.cid);
  add("source", fields.source);
  add("service", fields.service);
  add("method", fields.method);
  if (fields.attempt) add("attempt", absl::StrCat(*fields.attempt));
  if (fields.code) add("code", CodeName(*fields.code));
  if (fields.duration) add("duration", absl::FormatDuration(*fields.duration));
  return out;
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

void UseLogFormat(LogFormat format) {
  json_logs.store(format == LogFormat::kJson);
  if (format == LogFormat::kJson) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>());
  } else {
    spdlog::set_pattern("%+");  // spdlog's default text pattern
  }
}

void LogEvent(spdlog::level::level_enum level, const LogFields& fields, absl::string_view message) {
  if (!spdlog::should_log(level)) return;
  if (json_logs.load(std::memory_order_relaxed)) {
    current_fields = &fields;
    spdlog::log(level, "{}", fmt::string_view(message.data(), message.size()));
    current_fields = nullptr;
  } else {
    spdlog::log(level, "{}{}", fmt::string_view(message.data(), message.size()),
                TextSuffix(fields));
  }
}

void JsonFormatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  absl::string_view message(msg.payload.data(), msg.payload.size());
  std::string legacy_cid;
  // "[cid=X] rest": the cid becomes a field.
  if (message.substr(0, 5) == "[cid=") {
    const size_t close = message.find("] ");
    if (close != absl::string_view::npos) {
      legacy_cid = std::string(message.substr(5, close - 5));
      message.remove_prefix(close + 2);
    }
  }
  const absl::Time time = absl::FromChrono(msg.time);
  std::string line = absl::StrCat(
      "{\"time\":\"", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", time, absl::UTCTimeZone()),
      "\",\"level\":\"",
      absl::string_view(spdlog::level::to_string_view(msg.level).data(),
                        spdlog::level::to_string_view(msg.level).size()),
      "\",\"message\":");
  AppendJsonString(&line, message);
  if (const LogFields* fields = current_fields) {
    AppendField(&line, "cid", fields->cid.empty() ? legacy_cid : fields->cid);
    AppendField(&line, "source", fields->source);
    AppendField(&line, "service", fields->service);
    AppendField(&line, "method", fields->method);
    if (fields->attempt) absl::StrAppend(&line, ",\"attempt\":", *fields->attempt);
    if (fields->code) AppendField(&line, "code", CodeName(*fields->code));
    if (fields->duration) {
      absl::StrAppendFormat(&line, ",\"duration_ms\":%.3f",
                            absl::ToDoubleMilliseconds(*fields->duration));
    }
  } else {
    AppendField(&line, "cid", legacy_cid);
  }
  line.append("}\n");
  dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> JsonFormatter::clone() const {
  return std::make_unique<JsonFormatter>();
}

}  // namespace callmesh::logging

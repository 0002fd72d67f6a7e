// The one place where callmesh converts time: absl::Time / absl::Duration to and from the protobuf
// well-known types google.protobuf.Timestamp and google.protobuf.Duration, the checks of a
// Duration that arrives from outside (an RPC field, a config value), and the text form of a
// duration ("250ms", "1m30s", "2.5").
//
//   *request.mutable_timeout() = ToProtoDuration(absl::Seconds(5));
//   absl::StatusOr<absl::Duration> wait = NonNegativeDurationFromProto(request.timeout(),
//   "timeout"); if (!wait.ok()) return wait.status();  // "timeout: must not be negative, got -1s"
//
// Thread-safety: every function is pure and thread-safe. None throws.
#pragma once

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh {

// The range of google.protobuf.Duration: +-315,576,000,000 seconds (about 10,000 years).
inline constexpr int64_t kMaxProtoDurationSeconds = 315576000000;

// `time` as a Timestamp (nanos in [0, 1e9)). Times outside the Timestamp range (years 1 to 9999),
// including the infinite ones, are clamped to its ends.
google::protobuf::Timestamp ToProtoTimestamp(absl::Time time);

// An unset timestamp (0 seconds, 0 nanos) reads as `unset`.
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp,
                              absl::Time unset = absl::InfinitePast());

// `duration` as a Duration (seconds and nanos of the same sign), truncated to nanoseconds.
// Durations beyond the Duration range, including the infinite ones, are clamped to its ends.
google::protobuf::Duration ToProtoDuration(absl::Duration duration);

// Converts a Duration WITHOUT checking it: for values already checked (a validated config, a
// stored call). See DurationFromProto for values that come from outside.
absl::Duration FromProtoDuration(const google::protobuf::Duration& duration);

// Why `duration` is not a valid Duration (seconds beyond the range, |nanos| >= 1e9, seconds and
// nanos of different signs), as a phrase that follows a field name; std::nullopt if valid.
std::optional<std::string> ProtoDurationProblem(const google::protobuf::Duration& duration);

// Checks and converts a Duration from outside. INVALID_ARGUMENT "<field>: <problem>" if it is not
// valid (see ProtoDurationProblem).
absl::StatusOr<absl::Duration> DurationFromProto(const google::protobuf::Duration& duration,
                                                 absl::string_view field);

// DurationFromProto, and also INVALID_ARGUMENT "<field>: must not be negative, got -1s" for a
// negative duration.
absl::StatusOr<absl::Duration> NonNegativeDurationFromProto(
    const google::protobuf::Duration& duration, absl::string_view field);

// Parses the text form of a duration: a number with units as absl::ParseDuration reads it
// ("250ms", "5s", "1m30s", "1.5h"; units ns, us, ms, s, m, h) or a bare number of seconds ("2.5",
// "1e3"). INVALID_ARGUMENT, with a message that is a bare problem (no field), for anything else,
// a negative or infinite duration, or one beyond the Duration range.
absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text);

}  // namespace callmesh

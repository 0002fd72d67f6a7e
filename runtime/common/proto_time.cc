#include "runtime/common/proto_time.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/quoted.h"

namespace callmesh {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the ends of the Timestamp range.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// Splits `duration` (finite, within int64 seconds) into seconds and nanos of the same sign.
std::pair<int64_t, int32_t> SplitDuration(absl::Duration duration) {
  absl::Duration remainder;
  const int64_t seconds = absl::IDivDuration(duration, absl::Seconds(1), &remainder);
  const auto nanos =
      static_cast<int32_t>(absl::IDivDuration(remainder, absl::Nanoseconds(1), &remainder));
  return {seconds, nanos};
}

// A bare number of seconds ("2.5", "1e3", "inf").
bool ParseSeconds(absl::string_view text, double* out) {
  if (text.empty() || absl::ascii_isspace(text.front()) || absl::ascii_isspace(text.back())) {
    return false;
  }
  return absl::SimpleAtod(text, out);
}

}  // namespace

google::protobuf::Timestamp ToProtoTimestamp(absl::Time time) {
  google::protobuf::Timestamp out;
  if (time < absl::FromUnixSeconds(kMinTimestampSeconds)) {
    out.set_seconds(kMinTimestampSeconds);
    return out;
  }
  if (time >= absl::FromUnixSeconds(kMaxTimestampSeconds + 1)) {
    out.set_seconds(kMaxTimestampSeconds);
    out.set_nanos(static_cast<int32_t>(kNanosPerSecond - 1));
    return out;
  }
  // Rounds toward the infinite past, so the remainder is in [0, 1s).
  const int64_t seconds = absl::ToUnixSeconds(time);
  absl::Duration remainder = time - absl::FromUnixSeconds(seconds);
  out.set_seconds(seconds);
  out.set_nanos(
      static_cast<int32_t>(absl::IDivDuration(remainder, absl::Nanoseconds(1), &remainder)));
  return out;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& timestamp, absl::Time unset) {
  if (timestamp.seconds() == 0 && timestamp.nanos() == 0) return unset;
  return absl::FromUnixSeconds(timestamp.seconds()) + absl::Nanoseconds(timestamp.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration duration) {
  google::protobuf::Duration out;
  if (duration >= absl::Seconds(kMaxProtoDurationSeconds)) {
    out.set_seconds(kMaxProtoDurationSeconds);
    return out;
  }
  if (duration <= absl::Seconds(-kMaxProtoDurationSeconds)) {
    out.set_seconds(-kMaxProtoDurationSeconds);
    return out;
  }
  const auto [seconds, nanos] = SplitDuration(duration);
  out.set_seconds(seconds);
  out.set_nanos(nanos);
  return out;
}

absl::Duration FromProtoDuration(const google::protobuf::Duration& duration) {
  return absl::Seconds(duration.seconds()) + absl::Nanoseconds(duration.nanos());
}

std::optional<std::string> ProtoDurationProblem(const google::protobuf::Duration& duration) {
  const int64_t seconds = duration.seconds();
  const int32_t nanos = duration.nanos();
  const char* why = nullptr;
  if (seconds < -kMaxProtoDurationSeconds || seconds > kMaxProtoDurationSeconds) {
    why = "seconds beyond +-315576000000";
  } else if (nanos <= -kNanosPerSecond || nanos >= kNanosPerSecond) {
    why = "nanos beyond +-999999999";
  } else if ((seconds > 0 && nanos < 0) || (seconds < 0 && nanos > 0)) {
    why = "seconds and nanos of different signs";
  }
  if (why == nullptr) return std::nullopt;
  return absl::StrCat("invalid duration (seconds ", seconds, ", nanos ", nanos, "): ", why);
}

absl::StatusOr<absl::Duration> DurationFromProto(const google::protobuf::Duration& duration,
                                                 absl::string_view field) {
  if (std::optional<std::string> problem = ProtoDurationProblem(duration)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", *problem));
  }
  return FromProtoDuration(duration);
}

absl::StatusOr<absl::Duration> NonNegativeDurationFromProto(
    const google::protobuf::Duration& duration, absl::string_view field) {
  absl::StatusOr<absl::Duration> converted = DurationFromProto(duration, field);
  if (converted.ok() && *converted < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not be negative, got ", absl::FormatDuration(*converted)));
  }
  return converted;
}

absl::StatusOr<absl::Duration> ParseDurationText(absl::string_view text) {
  absl::Duration duration;
  double seconds;
  if (ParseSeconds(text, &seconds)) {
    if (!std::isfinite(seconds)) {
      return absl::InvalidArgumentError(
          absl::StrCat("duration must be finite, got ", Quoted(text)));
    }
    if (seconds < 0) {
      return absl::InvalidArgumentError(absl::StrCat("duration must not be negative, got ", text));
    }
    if (seconds > static_cast<double>(kMaxProtoDurationSeconds)) {
      return absl::InvalidArgumentError(absl::StrCat("duration out of range (at most ",
                                                     kMaxProtoDurationSeconds, "s), got ", text));
    }
    duration = absl::Seconds(seconds);
  } else if (absl::ParseDuration(std::string(text), &duration)) {
    if (duration == absl::InfiniteDuration() || duration == -absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("duration must be finite, got ", Quoted(text)));
    }
    if (duration < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("duration must not be negative, got ", Quoted(text)));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid duration ", Quoted(text),
        "; expected a number with a unit (ns, us, ms, s, m, h) such as \"250ms\", \"5s\", "
        "\"1m30s\" or \"1h\", or a number of seconds"));
  }
  if (duration > absl::Seconds(kMaxProtoDurationSeconds)) {
    return absl::InvalidArgumentError(absl::StrCat("duration out of range (at most ",
                                                   kMaxProtoDurationSeconds, "s), got ", text));
  }
  return duration;
}

}  // namespace callmesh

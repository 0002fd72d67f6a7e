#include "runtime/common/names.h"

#include <arpa/inet.h>

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/common/quoted.h"

namespace callmesh {
namespace {

constexpr size_t kMaxServiceName = 128;
constexpr size_t kMaxParentCid = 128;
constexpr size_t kMaxHostName = 253;
constexpr size_t kMaxHostLabel = 63;

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

absl::Status ToStatus(absl::string_view field, const std::optional<std::string>& problem) {
  return problem.has_value() ? Invalid(field, *problem) : absl::OkStatus();
}

bool IsIdentifier(absl::string_view text) {
  if (text.empty() || !(absl::ascii_isalpha(text.front()) || text.front() == '_')) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// Why `host` (not empty, no brackets) is not an IPv4 address or an RFC 1123 host name.
std::optional<std::string> HostProblem(absl::string_view host) {
  const bool numeric = std::all_of(host.begin(), host.end(),
                                   [](char c) { return absl::ascii_isdigit(c) || c == '.'; });
  if (numeric) {
    const std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
    int number = 0;
    const bool ipv4 = parts.size() == 4 && std::all_of(parts.begin(), parts.end(), [&](auto part) {
                        return !part.empty() && part.size() <= 3 &&
                               absl::SimpleAtoi(part, &number) && number <= 255;
                      });
    if (ipv4) return std::nullopt;
    return std::string("an IPv4 address is four numbers from 0 to 255");
  }
  absl::string_view name = host;
  absl::ConsumeSuffix(&name, ".");
  if (name.size() > kMaxHostName) {
    return absl::StrCat("a host name has at most ", kMaxHostName, " characters");
  }
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty()) return std::string("a host name has no empty labels");
    if (label.size() > kMaxHostLabel) {
      return absl::StrCat("a host name label has at most ", kMaxHostLabel, " characters");
    }
    if (!std::all_of(label.begin(), label.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '-'; })) {
      return std::string("a host name may only contain letters, digits, '-' and '.'");
    }
    if (label.front() == '-' || label.back() == '-') {
      return std::string("a host name label may not start or end with '-'");
    }
  }
  return std::nullopt;
}

// "::1", "fe80::1%eth0": an IPv6 address, with an optional zone.
bool IsIpv6(absl::string_view host) {
  const size_t percent = host.find('%');
  if (percent != absl::string_view::npos) {
    const absl::string_view zone = host.substr(percent + 1);
    if (zone.empty() || !std::all_of(zone.begin(), zone.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
        })) {
      return false;
    }
    host = host.substr(0, percent);
  }
  in6_addr address;
  return !host.empty() && inet_pton(AF_INET6, std::string(host).c_str(), &address) == 1;
}

}  // namespace

std::optional<std::string> ServiceNameProblem(absl::string_view name) {
  if (name.empty()) return std::string("is required");
  if (name.size() > kMaxServiceName) {
    return absl::StrCat("must be at most ", kMaxServiceName, " characters, got ", name.size());
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return absl::StrCat("may only contain letters, digits, '.', '_' and '-', got ", Quoted(name));
    }
  }
  return std::nullopt;
}

absl::Status ValidateServiceName(absl::string_view name, absl::string_view field) {
  return ToStatus(field, ServiceNameProblem(name));
}

std::string ConventionCallback(absl::string_view source) {
  return absl::StrCat(source, "-async-callback");
}

std::optional<std::string> MethodProblem(absl::string_view method) {
  if (method.empty()) return std::string("is required (\"package.Service/Method\")");
  const std::string problem =
      absl::StrCat("must be a gRPC method \"package.Service/Method\", got ", Quoted(method));
  absl::string_view rest = method;
  absl::ConsumePrefix(&rest, "/");
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos || !IsIdentifier(rest.substr(slash + 1))) return problem;
  for (absl::string_view part : absl::StrSplit(rest.substr(0, slash), '.')) {
    if (!IsIdentifier(part)) return problem;
  }
  return std::nullopt;
}

absl::StatusOr<std::string> MethodPath(absl::string_view method, absl::string_view field) {
  if (std::optional<std::string> problem = MethodProblem(method)) return Invalid(field, *problem);
  return absl::StrCat("/", absl::StripPrefix(method, "/"));
}

// Topics follow the service name rules (no '/', which the journal's topic keys rely on).
std::optional<std::string> TopicProblem(absl::string_view topic) {
  return ServiceNameProblem(topic);
}

absl::Status ValidateTopic(absl::string_view topic, absl::string_view field) {
  return ToStatus(field, TopicProblem(topic));
}

std::optional<std::string> AddressProblem(absl::string_view address, PortUse use) {
  if (address.empty()) return std::string("is required (host:port)");
  const std::string shown = Quoted(address);
  absl::string_view port;
  if (address.front() == '[') {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos) {
      return absl::StrCat("must be host:port, got ", shown, " (no ']' after the IPv6 host)");
    }
    if (!IsIpv6(address.substr(1, close - 1))) {
      return absl::StrCat("has an invalid IPv6 host in ", shown);
    }
    if (close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::StrCat("must be host:port, got ", shown);
    }
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return absl::StrCat("must be host:port, got ", shown);
    const absl::string_view host = address.substr(0, colon);
    if (host.find(':') != absl::string_view::npos) {
      return absl::StrCat("must be host:port with IPv6 hosts in brackets (\"[::1]:50051\"), got ",
                          shown);
    }
    if (host.empty()) return absl::StrCat("must be host:port, got ", shown, " (no host)");
    if (std::optional<std::string> problem = HostProblem(host)) {
      return absl::StrCat("has an invalid host ", Quoted(host), " in ", shown, ": ", *problem);
    }
    port = address.substr(colon + 1);
  }
  const int min_port = use == PortUse::kDial ? 1 : 0;
  int number = -1;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(port, &number) || number < min_port || number > 65535) {
    return absl::StrCat("must be host:port with a port from ", min_port, " to 65535, got ", shown);
  }
  return std::nullopt;
}

absl::Status ValidateAddress(absl::string_view address, absl::string_view field) {
  return ToStatus(field, AddressProblem(address, PortUse::kDial));
}

absl::Status ValidateListenAddress(absl::string_view address, absl::string_view field) {
  return ToStatus(field, AddressProblem(address, PortUse::kListen));
}

absl::Status ValidateCallContext(absl::string_view source, absl::string_view parent_cid) {
  if (!source.empty()) {
    if (absl::Status s = ValidateServiceName(source, "source"); !s.ok()) return s;
  }
  if (parent_cid.size() > kMaxParentCid) {
    return Invalid("parent_cid", absl::StrCat("longer than ", kMaxParentCid, " characters (",
                                              parent_cid.size(), ")"));
  }
  for (char c : parent_cid) {
    if (c < 0x21 || c > 0x7e) {
      return Invalid("parent_cid", absl::StrCat(Quoted(parent_cid),
                                                " may only contain printable ASCII characters"));
    }
  }
  return absl::OkStatus();
}

}  // namespace callmesh

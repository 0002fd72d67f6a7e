#include "runtime/common/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace callmesh {
namespace {

bool IsNameChar(char c) { return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-'; }

absl::Status Invalid(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
}

}  // namespace

absl::Status ValidateServiceName(absl::string_view name, absl::string_view field) {
  if (name.empty()) return Invalid(field, "service name is required");
  if (name.size() > 128) {
    return Invalid(field,
                   absl::StrCat("service name is longer than 128 characters (", name.size(), ")"));
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return Invalid(field, absl::StrCat("service name \"", absl::CEscape(name),
                                         "\" may only contain letters, digits, '.', '_' and '-'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCallContext(absl::string_view source, absl::string_view parent_cid) {
  if (!source.empty()) {
    if (absl::Status s = ValidateServiceName(source, "source"); !s.ok()) return s;
  }
  if (parent_cid.size() > 128) {
    return Invalid("parent_cid",
                   absl::StrCat("longer than 128 characters (", parent_cid.size(), ")"));
  }
  for (char c : parent_cid) {
    if (c < 0x21 || c > 0x7e) {
      return Invalid("parent_cid", absl::StrCat("\"", absl::CEscape(parent_cid),
                                                "\" may only contain printable ASCII characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateAddress(absl::string_view address, absl::string_view field) {
  const std::string shown = absl::StrCat("\"", absl::CEscape(address), "\"");
  const size_t colon = address.rfind(':');
  if (address.empty()) return Invalid(field, "address is required (host:port)");
  if (colon == absl::string_view::npos || colon == 0) {
    return Invalid(field, absl::StrCat("address ", shown, " is not host:port"));
  }
  absl::string_view host = address.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') {
      return Invalid(field, absl::StrCat("address ", shown, " has a malformed IPv6 host"));
    }
  } else if (host.find(':') != absl::string_view::npos) {
    return Invalid(field, absl::StrCat("address ", shown, " needs brackets around an IPv6 host"));
  }
  for (char c : host) {
    if (absl::ascii_isspace(c) || !absl::ascii_isprint(c)) {
      return Invalid(field, absl::StrCat("address ", shown, " has a space or control character"));
    }
  }
  uint32_t port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port) || port > 65535 ||
      address.substr(colon + 1).empty() || !absl::ascii_isdigit(address[colon + 1])) {
    return Invalid(field, absl::StrCat("address ", shown, " has no valid port (0-65535)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MethodPath(absl::string_view method, absl::string_view field) {
  absl::string_view m = method;
  if (!m.empty() && m.front() == '/') m.remove_prefix(1);
  const size_t slash = m.find('/');
  const bool well_formed = slash != absl::string_view::npos && slash > 0 && slash + 1 < m.size() &&
                           m.find('/', slash + 1) == absl::string_view::npos;
  bool clean = well_formed;
  for (char c : m) {
    if (!(absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '/')) clean = false;
  }
  if (!clean) {
    return Invalid(field, absl::StrCat("method \"", absl::CEscape(method),
                                       "\" is not of the form package.Service/Method"));
  }
  return absl::StrCat("/", m);
}

std::string ConventionCallback(absl::string_view source) {
  return absl::StrCat(source, "-async-callback");
}

}  // namespace callmesh

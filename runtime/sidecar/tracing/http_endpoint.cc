#include "runtime/sidecar/tracing/http_endpoint.h"

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/quoted.h"

namespace callmesh::tracing {

absl::StatusOr<HttpEndpoint> ParseHttpEndpoint(absl::string_view url, absl::string_view field) {
  constexpr absl::string_view kScheme = "http://";
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": must be an http:// URL such as http://127.0.0.1:4318/v1/traces, got ",
        Quoted(url)));
  }
  const absl::string_view rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const absl::string_view host_port = rest.substr(0, slash);
  const size_t colon = host_port.rfind(':');
  HttpEndpoint endpoint;
  if (host_port.empty() || colon == absl::string_view::npos || colon == 0 ||
      colon + 1 == host_port.size() ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &endpoint.port) || endpoint.port < 1 ||
      endpoint.port > 65535 ||
      host_port.substr(colon + 1).find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must name host:port after http://, got ", Quoted(url)));
  }
  endpoint.host = std::string(host_port.substr(0, colon));
  if (endpoint.host.size() > 2 && endpoint.host.front() == '[' && endpoint.host.back() == ']') {
    endpoint.host = endpoint.host.substr(1, endpoint.host.size() - 2);
  }
  endpoint.scheme_host_port = std::string(url.substr(0, kScheme.size() + host_port.size()));
  endpoint.path = slash == absl::string_view::npos || slash + 1 == rest.size()
                      ? "/v1/traces"
                      : std::string(rest.substr(slash));
  return endpoint;
}

}  // namespace callmesh::tracing

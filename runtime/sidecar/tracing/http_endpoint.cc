#include "runtime/sidecar/tracing/http_endpoint.h"

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/common/http/http_syntax.h"
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
  const std::optional<http::HostPort> split = http::SplitHostPort(host_port);
  if (!split.has_value() || split->port == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must name host:port after http://, got ", Quoted(url)));
  }
  HttpEndpoint endpoint;
  endpoint.host = split->host;
  endpoint.port = split->port;
  endpoint.scheme_host_port = std::string(url.substr(0, kScheme.size() + host_port.size()));
  endpoint.path = slash == absl::string_view::npos || slash + 1 == rest.size()
                      ? "/v1/traces"
                      : std::string(rest.substr(slash));
  return endpoint;
}

}  // namespace callmesh::tracing

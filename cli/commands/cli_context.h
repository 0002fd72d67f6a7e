// What every `callmesh` command shares: its input/output streams, the global options, the
// connection to the sidecar, descriptors of mesh services (cached per run), the rendering of calls
// and completions as JSON with their payloads decoded, and the mapping of errors to exit codes.
//
//   CliContext context(io, options);
//   CALLMESH_ASSIGN_OR_RETURN(v1::Sidecar::Stub * sidecar, context.Sidecar());
//   ...
//   context.PrintJson(context.CallToJson(call));
//
// Exit codes: an error made with InputError() (usage or input problems) exits 2; any other error
// (the call, the sidecar or a target failed) exits 1 and is printed with its gRPC code name.
//
// Not thread-safe: one context per command run, used from one thread (the watch command's signal
// thread only cancels a grpc::ClientContext).
#pragma once

#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "cli/json/json_value.h"
#include "cli/reflection/descriptor_source.h"
#include "runtime/common/tls/client_credentials.h"

namespace callmesh::cli {

inline constexpr char kDefaultSidecar[] = "127.0.0.1:4770";

struct CliIo {
  std::istream* in = nullptr;
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  // Whether stderr is a terminal (progress indicators are drawn only then).
  bool stderr_is_terminal = false;
  // Environment lookup (getenv); returns nullptr when unset.
  std::function<const char*(const char*)> getenv;
};

enum class OutputFormat { kDefault, kJson, kTable, kNames };

struct GlobalOptions {
  // From --sidecar; empty = CALLMESH_SIDECAR, then kDefaultSidecar.
  std::string sidecar;
  OutputFormat output = OutputFormat::kDefault;
  // --protoset FILE: descriptors for every target instead of server reflection.
  std::string protoset;
  // How long to wait for the sidecar's connection.
  absl::Duration connect_timeout = absl::Seconds(5);
  // --token-file, --tls-ca, --tls-cert, --tls-key; each one not given is taken from
  // CALLMESH_TOKEN_FILE, CALLMESH_TLS_CA, CALLMESH_TLS_CERT, CALLMESH_TLS_KEY.
  tls::ClientCredentialOptions credentials;
};

// An INVALID_ARGUMENT status that exits with code 2.
absl::Status InputError(absl::string_view message);
// `status` marked to exit with code 2 (its code and message are kept).
absl::Status AsInputError(absl::Status status);
// 0 for OK, 2 for input errors, 1 otherwise.
int ExitCodeFor(const absl::Status& status);

class CliContext {
 public:
  CliContext(CliIo io, GlobalOptions options);
  ~CliContext();

  std::istream& in() { return *io_.in; }
  std::ostream& out() { return *io_.out; }
  std::ostream& err() { return *io_.err; }
  const CliIo& io() const { return io_; }
  const GlobalOptions& options() const { return options_; }

  // The sidecar address in use and where it came from ("--sidecar", "CALLMESH_SIDECAR",
  // "the default").
  const std::string& sidecar_address() const { return sidecar_address_; }
  const std::string& sidecar_origin() const { return sidecar_origin_; }

  // The credentials in use: the flags', else the environment's (CALLMESH_TOKEN_FILE, ...).
  const tls::ClientCredentialOptions& credentials() const { return credentials_; }
  // Whether the CLI proves an identity (a token or a client certificate): the sidecar then takes
  // the source of calls from it, so none is claimed by default.
  bool authenticates() const {
    return !credentials_.token_file.empty() || !credentials_.tls.cert_file.empty();
  }

  // The sidecar stub, connected on first use. UNAVAILABLE naming the address (and its origin) if
  // the sidecar cannot be reached within `connect_timeout`.
  absl::StatusOr<v1::Sidecar::Stub*> Sidecar();
  std::shared_ptr<grpc::Channel> sidecar_channel() const { return channel_; }

  // A failed sidecar RPC as an absl::Status prefixed by `what`; a lost connection names the
  // sidecar address.
  absl::Status RpcError(const grpc::Status& status, absl::string_view what) const;

  // The registry, fetched once per run.
  absl::StatusOr<const v1::ListServicesResponse*> Services();

  // Descriptors of mesh service `service`: the --protoset if given, else server reflection on
  // one of its instances (healthy first). Input error (exit 2) for an unknown service, listing
  // the registered ones; for a target without reflection, a hint to pass --protoset.
  absl::StatusOr<DescriptorSource*> Descriptors(const std::string& service);

  // `bytes` of `method` on `service` as JSON (the reply when `reply`, else the request), or
  // nullopt when no descriptor can be had (the caller then shows base64). Never fails loudly.
  std::optional<JsonValue> DecodePayload(const std::string& service, const std::string& method,
                                         const std::string& bytes, bool reply);

  // Canonical proto3 JSON of sidecar records, with request and reply bytes decoded when possible.
  JsonValue CallToJson(const v1::Call& call);
  JsonValue CompletionToJson(const v1::Completion& completion);
  JsonValue DeadLetterToJson(const v1::DeadLetter& dead_letter);

  // Writes `value` indented (or compact for `compact`) and a newline to stdout.
  void PrintJson(const JsonValue& value, bool compact = false);

 private:
  CliIo io_;
  GlobalOptions options_;
  std::string sidecar_address_;
  std::string sidecar_origin_;
  tls::ClientCredentialOptions credentials_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Sidecar::Stub> stub_;
  bool connected_ = false;
  std::optional<v1::ListServicesResponse> services_;
  std::map<std::string, absl::StatusOr<std::unique_ptr<DescriptorSource>>> sources_;
  std::unique_ptr<DescriptorSource> protoset_;
};

// Short state name: "SUCCEEDED" for CALL_STATE_SUCCEEDED.
std::string StateName(v1::CallState state);
// Parses "succeeded", "SUCCEEDED" or "CALL_STATE_SUCCEEDED". Input error listing the states.
absl::StatusOr<v1::CallState> ParseState(const std::string& text);
// "2024-05-01T12:00:00.123Z", or "" when unset.
std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp);
// "DEADLINE_EXCEEDED" for 4.
std::string StatusCodeName(int code);
// Parses "5s", "250ms", "1m30s" into a positive duration. Input error naming `flag` otherwise.
absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text,
                                                     const std::string& flag);

}  // namespace callmesh::cli

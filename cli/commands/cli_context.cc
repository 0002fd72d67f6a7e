#include "cli/commands/cli_context.h"

#include <grpcpp/create_channel.h>

#include <istream>
#include <ostream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/json/json_proto.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"

namespace callmesh::cli {
namespace {

constexpr char kExitPayload[] = "callmesh.dev/cli-exit-code";

}  // namespace

absl::Status InputError(absl::string_view message) {
  return AsInputError(absl::InvalidArgumentError(message));
}

absl::Status AsInputError(absl::Status status) {
  if (!status.ok()) status.SetPayload(kExitPayload, absl::Cord("2"));
  return status;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return 0;
  return status.GetPayload(kExitPayload).has_value() ? 2 : 1;
}

std::string StateName(v1::CallState state) {
  std::string name = v1::CallState_Name(state);
  return absl::StartsWith(name, "CALL_STATE_") ? name.substr(11) : name;
}

absl::StatusOr<v1::CallState> ParseState(const std::string& text) {
  std::string upper = absl::AsciiStrToUpper(text);
  if (!absl::StartsWith(upper, "CALL_STATE_")) upper = "CALL_STATE_" + upper;
  v1::CallState state;
  if (v1::CallState_Parse(upper, &state) && state != v1::CALL_STATE_UNSPECIFIED) return state;
  std::vector<std::string> names;
  for (int s = v1::CallState_MIN + 1; s <= v1::CallState_MAX; ++s) {
    names.push_back(absl::AsciiStrToLower(StateName(static_cast<v1::CallState>(s))));
  }
  return InputError(
      absl::StrCat("unknown call state \"", text, "\" (one of: ", absl::StrJoin(names, ", "), ")"));
}

std::string FormatTimestamp(const google::protobuf::Timestamp& timestamp) {
  const absl::Time time = FromProtoTimestamp(timestamp);
  if (time == absl::InfinitePast()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string StatusCodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text,
                                                     const std::string& flag) {
  absl::StatusOr<absl::Duration> duration = ParseDurationText(text);
  if (!duration.ok() || *duration <= absl::ZeroDuration()) {
    return InputError(absl::StrCat("invalid ", flag, " \"", text,
                                   "\": expected a positive duration such as 5s, 250ms or 1m30s"));
  }
  return *duration;
}

CliContext::CliContext(CliIo io, GlobalOptions options)
    : io_(std::move(io)),
      options_(std::move(options)),
      credentials_(tls::MergeCredentials(options_.credentials,
                                         tls::ClientCredentialsFromEnvironment(io_.getenv))) {
  const char* env = io_.getenv ? io_.getenv("CALLMESH_SIDECAR") : nullptr;
  if (!options_.sidecar.empty()) {
    sidecar_address_ = options_.sidecar;
    sidecar_origin_ = "--sidecar";
  } else if (env != nullptr && *env != '\0') {
    sidecar_address_ = env;
    sidecar_origin_ = "CALLMESH_SIDECAR";
  } else {
    sidecar_address_ = kDefaultSidecar;
    sidecar_origin_ = "the default address";
  }
}

CliContext::~CliContext() = default;

absl::StatusOr<v1::Sidecar::Stub*> CliContext::Sidecar() {
  if (connected_) return stub_.get();
  if (absl::Status s = ValidateAddress(sidecar_address_, sidecar_origin_); !s.ok()) {
    return AsInputError(s);
  }
  const std::string where =
      absl::StrCat("cannot reach the sidecar at ", sidecar_address_, " (", sidecar_origin_, ")");
  if (!channel_) {
    grpc::ChannelArguments args;
    // Fail fast: a refused connection should not be retried for the whole connect timeout.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::CreateSidecarChannel(sidecar_address_, credentials_, args);
    if (!channel.ok()) return AsInputError(channel.status());
    channel_ = *std::move(channel);
  }
  const auto deadline = absl::ToChronoTime(absl::Now() + options_.connect_timeout);
  grpc_connectivity_state state = channel_->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
      // A plaintext client to a TLS port fails the same way as to no listener at all.
      const char* tls_hint =
          credentials_.tls.ca_file.empty()
              ? "; if it serves TLS, give its CA with --tls-ca or CALLMESH_TLS_CA"
              : "";
      return absl::UnavailableError(
          absl::StrCat(where,
                       ": connection failed; is callmeshd running? (set --sidecar or "
                       "CALLMESH_SIDECAR",
                       tls_hint, ")"));
    }
    if (!channel_->WaitForStateChange(state, deadline)) {
      return absl::UnavailableError(absl::StrCat(where, ": no connection after ",
                                                 absl::FormatDuration(options_.connect_timeout)));
    }
    state = channel_->GetState(true);
  }
  stub_ = v1::Sidecar::NewStub(channel_);
  connected_ = true;
  return stub_.get();
}

absl::Status CliContext::RpcError(const grpc::Status& status, absl::string_view what) const {
  std::string message = absl::StrCat(what, ": ", status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && channel_ &&
      channel_->GetState(false) != GRPC_CHANNEL_READY) {
    message = absl::StrCat(what, ": lost the sidecar at ", sidecar_address_, " (",
                           status.error_message(), ")");
  }
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), message);
}

absl::StatusOr<const v1::ListServicesResponse*> CliContext::Services() {
  if (services_.has_value()) return &*services_;
  absl::StatusOr<v1::Sidecar::Stub*> sidecar = Sidecar();
  if (!sidecar.ok()) return sidecar.status();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  v1::ListServicesResponse response;
  grpc::Status status = (*sidecar)->ListServices(&context, {}, &response);
  if (!status.ok()) return RpcError(status, "listing services");
  services_ = std::move(response);
  return &*services_;
}

absl::StatusOr<DescriptorSource*> CliContext::Descriptors(const std::string& service) {
  if (!options_.protoset.empty()) {
    if (!protoset_) {
      absl::StatusOr<std::unique_ptr<DescriptorSource>> loaded = LoadProtoset(options_.protoset);
      if (!loaded.ok()) return AsInputError(loaded.status());
      protoset_ = *std::move(loaded);
    }
    return protoset_.get();
  }
  if (auto it = sources_.find(service); it != sources_.end()) {
    if (!it->second.ok()) return it->second.status();
    return it->second->get();
  }
  absl::StatusOr<const v1::ListServicesResponse*> registry = Services();
  if (!registry.ok()) return registry.status();
  const v1::ServiceInfo* info = nullptr;
  std::vector<std::string> names;
  for (const v1::ServiceInfo& s : (*registry)->services()) {
    names.push_back(s.name());
    if (s.name() == service) info = &s;
  }
  absl::StatusOr<std::unique_ptr<DescriptorSource>>& slot = sources_[service];
  if (info == nullptr) {
    slot = AsInputError(absl::NotFoundError(absl::StrCat(
        "unknown service \"", service,
        "\" (registered: ", names.empty() ? "none" : absl::StrJoin(names, ", "), ")")));
    return slot.status();
  }
  std::vector<const v1::ServiceInstance*> instances;
  for (const auto& instance : info->instances()) {
    if (instance.healthy()) instances.push_back(&instance);
  }
  for (const auto& instance : info->instances()) {
    if (!instance.healthy()) instances.push_back(&instance);
  }
  if (instances.empty()) {
    slot = absl::UnavailableError(absl::StrCat(
        "service ", service, " has no instance to read descriptors from; pass --protoset FILE"));
    return slot.status();
  }
  absl::Status last;
  for (const v1::ServiceInstance* instance : instances) {
    std::unique_ptr<DescriptorSource> source = NewReflectionSource(
        grpc::CreateChannel(instance->address(), grpc::InsecureChannelCredentials()),
        absl::Seconds(10));
    absl::StatusOr<std::vector<std::string>> probe = source->ListServices();
    if (probe.ok()) {
      slot = std::move(source);
      return slot->get();
    }
    last = absl::Status(
        probe.status().code(),
        absl::StrCat("cannot read the descriptors of ", service, " from ", instance->address(),
                     ": ", probe.status().message(), "; pass --protoset FILE"));
  }
  slot = last.code() == absl::StatusCode::kUnimplemented ? AsInputError(last) : last;
  return slot.status();
}

std::optional<JsonValue> CliContext::DecodePayload(const std::string& service,
                                                   const std::string& method,
                                                   const std::string& bytes, bool reply) {
  absl::StatusOr<DescriptorSource*> source = Descriptors(service);
  if (!source.ok()) return std::nullopt;
  absl::StatusOr<const google::protobuf::MethodDescriptor*> resolved =
      ResolveMethod(**source, method, service);
  if (!resolved.ok()) return std::nullopt;
  const google::protobuf::Descriptor* type =
      reply ? (*resolved)->output_type() : (*resolved)->input_type();
  absl::StatusOr<JsonValue> json = ProtoBytesToJson(*type, bytes);
  if (!json.ok()) return std::nullopt;
  return *std::move(json);
}

namespace {

// Replaces member `key` of `object` (base64 bytes, or absent) with `decoded` when there is one.
void ReplaceBytes(JsonValue* object, const std::string& key, std::optional<JsonValue> decoded) {
  if (object == nullptr || !decoded.has_value()) return;
  object->Set(key, *std::move(decoded));
}

}  // namespace

JsonValue CliContext::CompletionToJson(const v1::Completion& completion) {
  absl::StatusOr<JsonValue> json = MessageToJson(completion);
  if (!json.ok()) return JsonValue::String(std::string(json.status().message()));
  if (completion.state() == v1::CALL_STATE_SUCCEEDED) {
    ReplaceBytes(&*json, "reply",
                 DecodePayload(completion.service(), completion.method(), completion.reply(),
                               /*reply=*/true));
  }
  return *std::move(json);
}

JsonValue CliContext::CallToJson(const v1::Call& call) {
  absl::StatusOr<JsonValue> json = MessageToJson(call);
  if (!json.ok()) return JsonValue::String(std::string(json.status().message()));
  const v1::CallEnvelope& envelope = call.envelope();
  if (!envelope.payload().empty()) {
    ReplaceBytes(json->Find("envelope"), "payload",
                 DecodePayload(envelope.service(), envelope.method(), envelope.payload(), false));
  }
  if (call.has_completion()) json->Set("completion", CompletionToJson(call.completion()));
  return *std::move(json);
}

JsonValue CliContext::DeadLetterToJson(const v1::DeadLetter& dead_letter) {
  absl::StatusOr<JsonValue> json = MessageToJson(dead_letter);
  if (!json.ok()) return JsonValue::String(std::string(json.status().message()));
  if (dead_letter.has_completion()) {
    json->Set("completion", CompletionToJson(dead_letter.completion()));
  }
  return *std::move(json);
}

void CliContext::PrintJson(const JsonValue& value, bool compact) {
  out() << cli::PrintJson(value, !compact) << "\n";
  out().flush();
}

}  // namespace callmesh::cli

// DescriptorSource over gRPC server reflection (v1, falling back to v1alpha).
#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/reflection/descriptor_source.h"
#include "cli/reflection/pool_builder.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace callmesh::cli {
namespace {

namespace v1 = ::grpc::reflection::v1;
namespace v1alpha = ::grpc::reflection::v1alpha;

absl::Status FromGrpc(const grpc::Status& status, absl::string_view what) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat(what, ": ", status.error_message()));
}

class ReflectionSource final : public DescriptorSource {
 public:
  ReflectionSource(std::shared_ptr<grpc::Channel> channel, absl::Duration timeout)
      : channel_(std::move(channel)), timeout_(timeout) {}

  absl::StatusOr<std::vector<std::string>> ListServices() override {
    v1::ServerReflectionRequest request;
    request.set_list_services("*");
    absl::StatusOr<std::vector<v1::ServerReflectionResponse>> responses = Exchange({request});
    if (!responses.ok()) return responses.status();
    const v1::ServerReflectionResponse& response = responses->front();
    if (response.has_error_response()) return ErrorOf(response, "listing services");
    std::vector<std::string> names;
    for (const v1::ServiceResponse& service : response.list_services_response().service()) {
      if (absl::StartsWith(service.name(), "grpc.reflection.") ||
          absl::StartsWith(service.name(), "grpc.health.")) {
        continue;
      }
      names.push_back(service.name());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::StatusOr<const google::protobuf::ServiceDescriptor*> FindService(
      const std::string& full_name) override {
    if (const auto* found = pool_.pool().FindServiceByName(full_name)) return found;
    if (absl::Status s = FetchSymbol(full_name); !s.ok()) return s;
    if (const auto* found = pool_.pool().FindServiceByName(full_name)) return found;
    return absl::NotFoundError(absl::StrCat("service ", full_name, " is not served"));
  }

  absl::StatusOr<const google::protobuf::Descriptor*> FindMessageType(
      const std::string& full_name) override {
    if (const auto* found = pool_.pool().FindMessageTypeByName(full_name)) return found;
    if (absl::Status s = FetchSymbol(full_name); !s.ok()) return s;
    if (const auto* found = pool_.pool().FindMessageTypeByName(full_name)) return found;
    return absl::NotFoundError(absl::StrCat("message type ", full_name, " is unknown"));
  }

  std::string description() const override {
    return version_ == Version::kV1alpha ? "grpc.reflection.v1alpha" : "grpc.reflection.v1";
  }

 private:
  enum class Version { kUnknown, kV1, kV1alpha };

  static absl::Status ErrorOf(const v1::ServerReflectionResponse& response,
                              absl::string_view what) {
    const v1::ErrorResponse& error = response.error_response();
    absl::StatusCode code = static_cast<absl::StatusCode>(error.error_code());
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
    return absl::Status(code, absl::StrCat(what, ": ", error.error_message()));
  }

  // Sends `requests` on one stream and reads one response per request.
  template <typename Proto>
  absl::StatusOr<std::vector<v1::ServerReflectionResponse>> ExchangeWith(
      const std::vector<v1::ServerReflectionRequest>& requests, grpc::Status* rpc_status) {
    auto stub = Proto::ServerReflection::NewStub(channel_);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    auto stream = stub->ServerReflectionInfo(&context);
    std::vector<v1::ServerReflectionResponse> responses;
    for (const v1::ServerReflectionRequest& request : requests) {
      // v1 and v1alpha are wire-identical: convert through bytes.
      typename Proto::ServerReflectionRequest wire;
      wire.ParseFromString(request.SerializeAsString());
      if (!stream->Write(wire)) break;
      typename Proto::ServerReflectionResponse answer;
      if (!stream->Read(&answer)) break;
      responses.emplace_back().ParseFromString(answer.SerializeAsString());
    }
    stream->WritesDone();
    *rpc_status = stream->Finish();
    if (responses.size() == requests.size()) return responses;
    if (rpc_status->ok()) {
      *rpc_status = grpc::Status(grpc::StatusCode::INTERNAL,
                                 "the reflection stream ended before every answer");
    }
    return FromGrpc(*rpc_status, "server reflection failed");
  }

  absl::StatusOr<std::vector<v1::ServerReflectionResponse>> Exchange(
      const std::vector<v1::ServerReflectionRequest>& requests) {
    grpc::Status rpc_status;
    if (version_ != Version::kV1alpha) {
      auto responses = ExchangeWith<ProtoV1>(requests, &rpc_status);
      if (responses.ok()) {
        version_ = Version::kV1;
        return responses;
      }
      if (rpc_status.error_code() != grpc::StatusCode::UNIMPLEMENTED || version_ == Version::kV1) {
        return responses.status();
      }
      version_ = Version::kV1alpha;
    }
    auto responses = ExchangeWith<ProtoV1alpha>(requests, &rpc_status);
    if (!responses.ok() && rpc_status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      return absl::UnimplementedError(
          "the target serves no gRPC server reflection (neither grpc.reflection.v1 nor v1alpha)");
    }
    return responses;
  }

  // Adds the files of `response` to the fetched set.
  absl::Status Collect(const v1::ServerReflectionResponse& response, absl::string_view what) {
    if (response.has_error_response()) return ErrorOf(response, what);
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      if (!file.ParseFromString(bytes)) {
        return absl::InternalError(absl::StrCat(what, ": the server sent an unparsable file"));
      }
      pool_.Add(std::move(file));
    }
    return absl::OkStatus();
  }

  absl::Status FetchSymbol(const std::string& symbol) {
    v1::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    auto responses = Exchange({request});
    if (!responses.ok()) return responses.status();
    if (responses->front().has_error_response() &&
        responses->front().error_response().error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::NotFoundError(absl::StrCat("symbol ", symbol, " is not served"));
    }
    if (absl::Status s = Collect(responses->front(), absl::StrCat("fetching ", symbol)); !s.ok()) {
      return s;
    }
    // Dependencies the server did not send along, transitively.
    for (int round = 0; round < 64; ++round) {
      std::vector<std::string> missing = pool_.MissingDependencies();
      if (missing.empty()) break;
      std::vector<v1::ServerReflectionRequest> requests;
      for (const std::string& name : missing) requests.emplace_back().set_file_by_filename(name);
      auto files = Exchange(requests);
      if (!files.ok()) return files.status();
      for (size_t i = 0; i < files->size(); ++i) {
        if (absl::Status s = Collect((*files)[i], absl::StrCat("fetching file ", missing[i]));
            !s.ok()) {
          return s;
        }
      }
    }
    return pool_.BuildAll();
  }

  struct ProtoV1 {
    using ServerReflection = v1::ServerReflection;
    using ServerReflectionRequest = v1::ServerReflectionRequest;
    using ServerReflectionResponse = v1::ServerReflectionResponse;
  };
  struct ProtoV1alpha {
    using ServerReflection = v1alpha::ServerReflection;
    using ServerReflectionRequest = v1alpha::ServerReflectionRequest;
    using ServerReflectionResponse = v1alpha::ServerReflectionResponse;
  };

  std::shared_ptr<grpc::Channel> channel_;
  absl::Duration timeout_;
  Version version_ = Version::kUnknown;
  PoolBuilder pool_;
};

}  // namespace

std::unique_ptr<DescriptorSource> NewReflectionSource(std::shared_ptr<grpc::Channel> channel,
                                                      absl::Duration timeout) {
  return std::make_unique<ReflectionSource>(std::move(channel), timeout);
}

}  // namespace callmesh::cli

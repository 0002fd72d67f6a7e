#include "runtime/common/tls/client_credentials.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "runtime/common/status_macros.h"
#include "runtime/common/tls/token_file.h"

namespace callmesh::tls {
namespace {

namespace gx = grpc::experimental;

// Adds `authorization: Bearer <token>` to every call's initial metadata. Works on plaintext and
// TLS channels alike (call credentials would need a secure channel).
class BearerTokenInterceptor : public gx::Interceptor {
 public:
  explicit BearerTokenInterceptor(TokenFile* token) : token_(token) {}

  void Intercept(gx::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            gx::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert(
          {"authorization", absl::StrCat("Bearer ", token_->Current())});
    }
    methods->Proceed();
  }

 private:
  TokenFile* const token_;
};

class BearerTokenInterceptorFactory : public gx::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(std::shared_ptr<TokenFile> token)
      : token_(std::move(token)) {}

  gx::Interceptor* CreateClientInterceptor(gx::ClientRpcInfo* /*info*/) override {
    return new BearerTokenInterceptor(token_.get());
  }

 private:
  // Shared by every interceptor the factory makes; the channel owns the factory.
  const std::shared_ptr<TokenFile> token_;
};

std::string Get(const std::function<const char*(const char*)>& getenv, const char* name) {
  const char* value = getenv ? getenv(name) : std::getenv(name);
  return value == nullptr ? "" : value;
}

}  // namespace

ClientCredentialOptions ClientCredentialsFromEnvironment(
    const std::function<const char*(const char*)>& getenv) {
  return ClientCredentialOptions{.token_file = Get(getenv, kTokenFileVariable),
                                 .tls = {.ca_file = Get(getenv, kTlsCaVariable),
                                         .cert_file = Get(getenv, kTlsCertVariable),
                                         .key_file = Get(getenv, kTlsKeyVariable)}};
}

ClientCredentialOptions MergeCredentials(const ClientCredentialOptions& flags,
                                         const ClientCredentialOptions& environment) {
  auto pick = [](const std::string& a, const std::string& b) { return a.empty() ? b : a; };
  return ClientCredentialOptions{
      .token_file = pick(flags.token_file, environment.token_file),
      .tls = {.ca_file = pick(flags.tls.ca_file, environment.tls.ca_file),
              .cert_file = pick(flags.tls.cert_file, environment.tls.cert_file),
              .key_file = pick(flags.tls.key_file, environment.tls.key_file)}};
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateSidecarChannel(
    const std::string& address, const ClientCredentialOptions& options,
    const grpc::ChannelArguments& args) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (!options.tls.empty()) {
    if (options.tls.ca_file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("a client certificate needs the mesh CA too (",
                                                     kTlsCaVariable, " or --tls-ca)"));
    }
    CALLMESH_ASSIGN_OR_RETURN(
        credentials, MeshChannelCredentials(options.tls, {.kind = IdentityKind::kSidecar}));
  }
  std::vector<std::unique_ptr<gx::ClientInterceptorFactoryInterface>> interceptors;
  if (!options.token_file.empty()) {
    CALLMESH_ASSIGN_OR_RETURN(std::unique_ptr<TokenFile> token,
                              TokenFile::Open(options.token_file));
    interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(
        std::shared_ptr<TokenFile>(std::move(token))));
  }
  return gx::CreateCustomChannelWithInterceptors(address, credentials, args,
                                                 std::move(interceptors));
}

}  // namespace callmesh::tls

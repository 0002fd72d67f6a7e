#include "runtime/sdk/service_host.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/impl/server_initializer.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/grpc_status.h"
#include "runtime/common/message_limits.h"
#include "runtime/common/names.h"
#include "runtime/common/proto_time.h"
#include "runtime/common/tls/mesh_ca.h"
#include "runtime/common/tls/tls_credentials.h"
#include "spdlog/spdlog.h"

namespace callmesh {
namespace {

// Copies the names of the services a server was built with (gRPC keeps them private; builder
// plugins are how server reflection learns them too).
class ServiceListPlugin final : public grpc::ServerBuilderPlugin {
 public:
  explicit ServiceListPlugin(std::vector<std::string>* names) : names_(names) {}
  std::string name() override { return "callmesh_service_list"; }
  void InitServer(grpc::ServerInitializer* initializer) override {
    const std::vector<std::string>* names = initializer->GetServiceList();
    if (names != nullptr) *names_ = *names;
  }
  void Finish(grpc::ServerInitializer*) override {}
  void ChangeArguments(const std::string&, void*) override {}

 private:
  std::vector<std::string>* names_;
};

class ServiceListOption final : public grpc::ServerBuilderOption {
 public:
  explicit ServiceListOption(std::vector<std::string>* names) : names_(names) {}
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->push_back(std::make_unique<ServiceListPlugin>(names_));
  }

 private:
  std::vector<std::string>* names_;
};

}  // namespace

ServiceHost::ServiceHost(ServiceHostOptions options) : options_(std::move(options)) {}

ServiceHost::~ServiceHost() { Shutdown(absl::Seconds(1)); }

void ServiceHost::AddService(grpc::Service* service) { services_.push_back(service); }

void ServiceHost::AddCallbacks(CallbackHandler* handler) { callbacks_.Add(handler); }

void ServiceHost::AddSubscriber(EventSubscriber* subscriber, SubscribeOptions options) {
  services_.push_back(subscriber->callmesh_service());
  for (const EventTopic& topic : subscriber->callmesh_topics()) {
    v1::Subscription& subscription = subscriptions_.emplace_back();
    subscription.set_topic(topic.topic);
    subscription.set_method(topic.method);
    subscription.set_mode(options.mode);
    subscription.set_start(options.start);
    subscription.set_start_sequence(options.start_sequence);
    if (options.start == v1::SUBSCRIPTION_START_TIME) {
      *subscription.mutable_start_time() = ToProtoTimestamp(options.start_time);
    }
  }
}

std::vector<std::string> ServiceHost::mesh_names() const {
  std::vector<std::string> names = {options_.name};
  if (!callbacks_.empty()) names.push_back(ConventionCallback(options_.name));
  return names;
}

absl::Status ServiceHost::Start() {
  for (const std::string& name : mesh_names()) {
    if (absl::Status s = ValidateServiceName(name, "name"); !s.ok()) return s;
  }
  if (absl::Status s = ValidateListenAddress(options_.listen, "listen"); !s.ok()) return s;
  if (!options_.sidecar.empty()) {
    if (absl::Status s = ValidateAddress(options_.sidecar, "sidecar"); !s.ok()) return s;
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = ServerCredentials();
  if (!credentials.ok()) return credentials.status();
  if (!options_.sidecar.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        tls::CreateSidecarChannel(options_.sidecar, options_.credentials);
    if (!channel.ok()) return channel.status();
    sidecar_channel_ = *std::move(channel);
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second process share a port in use.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options_.listen, *credentials, &port_);
  // The sidecar is the gate for payload sizes (its max_payload_bytes): what it sends here, a
  // request or a completion wrapping a reply, is taken up to the largest limit it can be set to.
  builder.SetMaxReceiveMessageSize(static_cast<int>(MaxWrappedMessageBytes(kMaxPayloadBytesLimit)));
  std::vector<std::string> served;
  builder.SetOption(std::make_unique<ServiceListOption>(&served));
  for (grpc::Service* service : services_) builder.RegisterService(service);
  if (!callbacks_.empty()) builder.RegisterService(&callbacks_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen));
  }
  address_ = absl::StrCat(options_.listen.substr(0, options_.listen.rfind(':')), ":", port_);
  for (std::string& service : served) {
    if (!absl::StartsWith(service, "grpc.")) grpc_services_.push_back(std::move(service));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);
  if (!options_.sidecar.empty()) {
    if (absl::Status s = Register(); !s.ok()) {
      server_->Shutdown(std::chrono::system_clock::now());
      server_.reset();
      return s;
    }
  }
  if (registered_ && options_.refresh_interval > absl::ZeroDuration()) {
    refresher_ = std::thread([this] { RefreshLoop(); });
  }
  spdlog::info("service {} listening on {}{}", absl::StrJoin(mesh_names(), " and "), address_,
               registered_ ? absl::StrCat(", registered with sidecar ", options_.sidecar) : "");
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServiceHost::ServerCredentials() const {
  const tls::TlsFiles& files = options_.serve_tls;
  if (files.cert_file.empty() && files.key_file.empty()) return grpc::InsecureServerCredentials();
  // The trust domain is the one of the host's own certificate.
  absl::StatusOr<std::vector<std::string>> sans = tls::UriSansOfCertificateFile(files.cert_file);
  if (!sans.ok()) return absl::InvalidArgumentError(sans.status().message());
  for (const std::string& san : *sans) {
    absl::StatusOr<tls::MeshIdentity> identity = tls::ParseSpiffeId(san);
    if (!identity.ok()) continue;
    return tls::MeshServerCredentials(
        files, /*require_client_certificate=*/true,
        tls::PeerRule{.kind = tls::IdentityKind::kSidecar, .trust_domain = identity->trust_domain});
  }
  return absl::InvalidArgumentError(
      absl::StrCat("certificate ", files.cert_file,
                   " has no callmesh identity (URI SAN spiffe://<trust-domain>/app/<name>); "
                   "issue one with 'callmesh certs issue'"));
}

void ServiceHost::RefreshLoop() {
  auto stub = v1::Sidecar::NewStub(sidecar_channel_);
  bool lost = false;
  while (!stop_refresh_.WaitForNotificationWithTimeout(options_.refresh_interval)) {
    grpc::Status status = SendRegistration(*stub, options_.refresh_interval, false);
    if (!status.ok() && !lost) {
      spdlog::warn("service {}: sidecar {} unreachable ({}); will keep registering", options_.name,
                   options_.sidecar, status.error_message());
    } else if (status.ok() && lost) {
      spdlog::info("service {}: registered again with sidecar {}", options_.name, options_.sidecar);
    }
    lost = !status.ok();
  }
}

grpc::Status ServiceHost::SendRegistration(v1::Sidecar::Stub& stub, absl::Duration timeout,
                                           bool wait_for_ready) const {
  for (const std::string& name : mesh_names()) {
    grpc::Status status = SendRegistrationAs(stub, name, timeout, wait_for_ready);
    if (!status.ok()) return status;
  }
  return grpc::Status::OK;
}

grpc::Status ServiceHost::SendRegistrationAs(v1::Sidecar::Stub& stub, const std::string& name,
                                             absl::Duration timeout, bool wait_for_ready) const {
  grpc::ClientContext context;
  context.set_wait_for_ready(wait_for_ready);
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  v1::RegisterServiceRequest request;
  request.set_name(name);
  request.set_address(address_);
  for (const std::string& service : grpc_services_) request.add_grpc_services(service);
  if (name == options_.name) {
    for (const v1::Subscription& subscription : subscriptions_) {
      *request.add_subscriptions() = subscription;
    }
  }
  v1::RegisterServiceResponse response;
  return stub.RegisterService(&context, request, &response);
}

absl::Status ServiceHost::Register() {
  auto stub = v1::Sidecar::NewStub(sidecar_channel_);
  // Wait for ready: the sidecar may still be starting.
  grpc::Status status = SendRegistration(*stub, options_.register_timeout, true);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("cannot register service ", options_.name, " with sidecar ",
                                     options_.sidecar, ": ", status.error_message()));
  }
  registered_ = true;
  return absl::OkStatus();
}

void ServiceHost::Deregister() {
  if (!registered_) return;
  registered_ = false;
  auto stub = v1::Sidecar::NewStub(sidecar_channel_);
  for (const std::string& name : mesh_names()) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    v1::DeregisterServiceRequest request;
    request.set_name(name);
    request.set_address(address_);
    v1::DeregisterServiceResponse response;
    grpc::Status status = stub->DeregisterService(&context, request, &response);
    if (!status.ok()) {
      spdlog::warn("service {}: deregistering from sidecar {} failed: {}", name, options_.sidecar,
                   status.error_message());
    }
  }
}

void ServiceHost::Shutdown(absl::Duration grace) {
  if (server_ == nullptr || stopped_) return;
  stopped_ = true;
  stop_refresh_.Notify();
  if (refresher_.joinable()) refresher_.join();
  Deregister();
  server_->GetHealthCheckService()->SetServingStatus(false);
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void ServiceHost::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace callmesh

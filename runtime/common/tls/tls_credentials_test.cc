// Real TLS on loopback between gRPC clients and servers built from certificates of a test mesh CA.
#include "runtime/common/tls/tls_credentials.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "runtime/common/tls/client_credentials.h"
#include "runtime/common/tls/test_pki.h"
#include "tests/support/files.h"

namespace callmesh::tls {
namespace {

using ::callmesh::testing::FileText;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// A Health service that counts the calls its handler ran and keeps the last authorization header.
class RecordingHealth : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const HealthCheckRequest*,
                     HealthCheckResponse* response) override {
    ++calls;
    auto it = context->client_metadata().find("authorization");
    std::lock_guard<std::mutex> lock(mu);
    authorization = it == context->client_metadata().end()
                        ? ""
                        : std::string(it->second.data(), it->second.size());
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

  std::atomic<int> calls{0};
  std::mutex mu;
  std::string authorization;
};

struct TestServer {
  RecordingHealth health;
  std::unique_ptr<grpc::Server> server;
  std::string address;
};

std::unique_ptr<TestServer> StartServer(std::shared_ptr<grpc::ServerCredentials> credentials) {
  auto server = std::make_unique<TestServer>();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", credentials, &port);
  builder.RegisterService(&server->health);
  server->server = builder.BuildAndStart();
  server->address = absl::StrCat("127.0.0.1:", port);
  return server;
}

// One Check on a fresh channel; the peer's PEM certificate in `peer_pem` if given.
grpc::Status Check(const std::shared_ptr<grpc::Channel>& channel, std::string* peer_pem = nullptr) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HealthCheckResponse response;
  grpc::Status status = Health::NewStub(channel)->Check(&context, {}, &response);
  if (peer_pem != nullptr && status.ok()) {
    std::vector<grpc::string_ref> pem =
        context.auth_context()->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    *peer_pem = pem.empty() ? "" : std::string(pem[0].data(), pem[0].size());
  }
  return status;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address,
                                       std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  // A fresh connection per channel, so every channel does its own handshake.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, credentials, args);
}

class TlsCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
  }

  std::optional<TestPki> pki_;
};

TEST_F(TlsCredentialsTest, SidecarAndAppTalkMutualTls) {
  TlsFiles app = *pki_->App("greeter");
  TlsFiles sidecar = *pki_->Sidecar("a");
  auto server = StartServer(*MeshServerCredentials(app, /*require_client_certificate=*/true));
  auto credentials = MeshChannelCredentials(
      sidecar, {.kind = IdentityKind::kApp, .trust_domain = "callmesh.local"});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  std::string peer_pem;
  grpc::Status status = Check(Channel(server->address, *credentials), &peer_pem);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(peer_pem, FileText(app.cert_file));
  EXPECT_EQ(server->health.calls, 1);
}

TEST_F(TlsCredentialsTest, ClientRefusesAServerOfAnotherKindOrTrustDomain) {
  auto server = StartServer(*MeshServerCredentials(*pki_->App("greeter"), true));
  TlsFiles sidecar = *pki_->Sidecar("a");
  // An app where a sidecar is expected (the SDK dialing its sidecar).
  EXPECT_EQ(Check(Channel(server->address,
                          *MeshChannelCredentials(sidecar, {.kind = IdentityKind::kSidecar})))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Check(Channel(server->address,
                          *MeshChannelCredentials(
                              sidecar, {.kind = IdentityKind::kApp, .trust_domain = "other.mesh"})))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->health.calls, 0);
}

TEST_F(TlsCredentialsTest, CertificatesOfAnotherCaAndPlaintextAreRefused) {
  auto server = StartServer(*MeshServerCredentials(*pki_->App("greeter"), true));
  TestPki other = *TestPki::Create();
  // A client of another mesh: its CA does not know the server, the server does not know it.
  EXPECT_EQ(Check(Channel(server->address, *MeshChannelCredentials(*other.Sidecar("a"),
                                                                   {.kind = IdentityKind::kApp})))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Our CA, but a client certificate of the other mesh.
  TlsFiles mixed = *other.Sidecar("b");
  mixed.ca_file = pki_->ca_file();
  EXPECT_EQ(
      Check(Channel(server->address, *MeshChannelCredentials(mixed, {.kind = IdentityKind::kApp})))
          .error_code(),
      grpc::StatusCode::UNAVAILABLE);
  // No client certificate at all.
  TlsFiles anonymous{.ca_file = pki_->ca_file()};
  EXPECT_EQ(Check(Channel(server->address,
                          *MeshChannelCredentials(anonymous, {.kind = IdentityKind::kApp})))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Check(Channel(server->address, grpc::InsecureChannelCredentials())).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(server->health.calls, 0);
}

TEST_F(TlsCredentialsTest, OnlyPeersRefusesOtherIdentitiesBeforeTheHandler) {
  auto server = StartServer(*MeshServerCredentials(
      *pki_->App("greeter"), true,
      PeerRule{.kind = IdentityKind::kSidecar, .trust_domain = "callmesh.local"}));
  grpc::Status intruder =
      Check(Channel(server->address,
                    *MeshChannelCredentials(*pki_->App("intruder"), {.kind = IdentityKind::kApp})));
  EXPECT_EQ(intruder.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(intruder.error_message(),
              HasSubstr("only a sidecar of trust domain callmesh.local may call this server; "
                        "peer is spiffe://callmesh.local/app/intruder"));
  EXPECT_EQ(server->health.calls, 0);
  grpc::Status sidecar = Check(Channel(
      server->address, *MeshChannelCredentials(*pki_->Sidecar("a"), {.kind = IdentityKind::kApp})));
  EXPECT_TRUE(sidecar.ok()) << sidecar.error_message();
  EXPECT_EQ(server->health.calls, 1);
}

TEST_F(TlsCredentialsTest, RotatedCertificateIsServedWithoutRestart) {
  TlsFiles app = *pki_->App("greeter");
  auto server = StartServer(*MeshServerCredentials(app, true));
  auto credentials = *MeshChannelCredentials(*pki_->Sidecar("a"), {.kind = IdentityKind::kApp});
  std::string before;
  ASSERT_TRUE(Check(Channel(server->address, credentials), &before).ok());
  ASSERT_TRUE(pki_->App("greeter").ok());  // a new key and certificate in place
  const std::string rotated = FileText(app.cert_file);
  ASSERT_NE(rotated, before);
  // The file watcher picks the new pair up on its next check; each new connection shows what
  // the server presents at that moment.
  std::string seen = before;
  for (int i = 0; i < 200 && seen != rotated; ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(Check(Channel(server->address, credentials), &seen).ok());
  }
  EXPECT_EQ(seen, rotated);
}

TEST_F(TlsCredentialsTest, SidecarChannelSendsTheTokenAndFollowsItsFile) {
  const std::string token_file = NewTestDir("token") + "/token";
  std::ofstream(token_file) << "s3cret\n";
  auto server = StartServer(grpc::InsecureServerCredentials());
  auto channel = CreateSidecarChannel(server->address, {.token_file = token_file});
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_TRUE(Check(*channel).ok());
  EXPECT_EQ(server->health.authorization, "Bearer s3cret");
}

TEST_F(TlsCredentialsTest, SidecarChannelWithTlsAndTokenFromTheEnvironment) {
  auto server = StartServer(*MeshServerCredentials(*pki_->Sidecar("a"), false));
  TlsFiles app = *pki_->App("billing");
  const std::string token_file = NewTestDir("token") + "/token";
  std::ofstream(token_file) << "t0ken";
  std::map<std::string, std::string> env = {{kTlsCaVariable, app.ca_file},
                                            {kTlsCertVariable, app.cert_file},
                                            {kTlsKeyVariable, app.key_file},
                                            {kTokenFileVariable, token_file}};
  ClientCredentialOptions options = ClientCredentialsFromEnvironment([&](const char* name) {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
  auto channel = CreateSidecarChannel(server->address, options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  grpc::Status status = Check(*channel);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(server->health.authorization, "Bearer t0ken");
}

TEST_F(TlsCredentialsTest, ServerWithoutCaFileServesOneWayTlsAndAsksNoCertificate) {
  TlsFiles sidecar = *pki_->Sidecar("a");
  sidecar.ca_file.clear();  // token-only set-up: callers authenticate with a bearer token
  auto server = StartServer(*MeshServerCredentials(sidecar, /*require_client_certificate=*/false));
  // A client with only the CA (no certificate of its own) gets through.
  auto credentials =
      MeshChannelCredentials({.ca_file = pki_->ca_file()},
                             {.kind = IdentityKind::kSidecar, .trust_domain = "callmesh.local"});
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  grpc::Status status = Check(Channel(server->address, *credentials));
  EXPECT_TRUE(status.ok()) << status.error_message();

  // Requiring client certificates needs the CA to verify them against.
  EXPECT_THAT(
      MeshServerCredentials(sidecar, /*require_client_certificate=*/true).status().message(),
      HasSubstr("ca_file: required"));
}

TEST_F(TlsCredentialsTest, FilesThatHoldNoPemOfTheirKindAreNamed) {
  TlsFiles sidecar = *pki_->Sidecar("a");
  const std::string not_pem = NewTestDir("pem") + "/server.crt";
  std::ofstream(not_pem) << "not a certificate\n";
  EXPECT_THAT(ValidateServerTlsFiles({.cert_file = not_pem, .key_file = sidecar.key_file}, false,
                                     "security.tls.")
                  .message(),
              HasSubstr("security.tls.cert_file: \"" + not_pem + "\" holds no PEM CERTIFICATE"));
  // The key where the certificate belongs, and the other way round.
  EXPECT_THAT(
      ValidateServerTlsFiles({.cert_file = sidecar.cert_file, .key_file = sidecar.cert_file}, false)
          .message(),
      HasSubstr("key_file: \"" + sidecar.cert_file + "\" holds no PEM PRIVATE KEY"));
}

TEST_F(TlsCredentialsTest, UnreadableFilesAreNamed) {
  EXPECT_THAT(MeshServerCredentials({.ca_file = pki_->ca_file(),
                                     .cert_file = "/nonexistent.crt",
                                     .key_file = "/nonexistent.key"},
                                    true)
                  .status()
                  .message(),
              HasSubstr("cert_file: cannot read \"/nonexistent.crt\""));
  EXPECT_THAT(
      ValidateTlsFiles({.ca_file = pki_->ca_file(), .cert_file = "x.crt"}, false, "security.tls.")
          .message(),
      HasSubstr("security.tls.cert_file and security.tls.key_file: give both or neither"));
  EXPECT_THAT(
      CreateSidecarChannel("127.0.0.1:1", {.token_file = "/nonexistent"}).status().message(),
      HasSubstr("cannot read token file \"/nonexistent\""));
  EXPECT_THAT(
      CreateSidecarChannel("127.0.0.1:1", {.tls = {.ca_file = "/none/ca.crt"}}).status().message(),
      HasSubstr("ca_file: cannot read \"/none/ca.crt\""));
}

}  // namespace
}  // namespace callmesh::tls

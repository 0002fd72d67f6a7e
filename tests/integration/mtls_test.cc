// Outbound mTLS of the sidecar and the ServiceHost's door: a real callmesh::Sidecar (in this
// process) with `security.tls` (its Sidecar API on TLS, callers authenticated by their app
// certificates) dials ServiceHosts that serve mTLS with app certificates of a test mesh CA; a
// forged Callback.OnCompletion sent straight to an app's port is refused before any handler runs,
// while the sidecar's own deliveries get through.
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/common/tls/test_pki.h"
#include "runtime/sdk/callback_router.h"
#include "runtime/sdk/mesh.h"
#include "runtime/sdk/service_host.h"
#include "runtime/sidecar/testing/in_process_sidecar.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/recorded_completions.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::InProcessSidecar;
using ::callmesh::testing::RecordedCompletions;
using ::callmesh::testing::WaitUntil;
using ::callmesh::tls::TestPki;
using ::callmesh::tls::TlsFiles;
using ::testing::HasSubstr;

constexpr char kSayHello[] = "greeter.v1.Greeter/SayHello";

std::string Hello(const std::string& name) {
  ::greeter::v1::HelloRequest request;
  request.set_name(name);
  return request.SerializeAsString();
}

std::string SecurityYaml(const TlsFiles& sidecar) {
  return absl::StrCat(
      "security:\n  trust_domain: callmesh.local\n  tls:\n    cert_file: ", sidecar.cert_file,
      "\n    key_file: ", sidecar.key_file, "\n    ca_file: ", sidecar.ca_file, "\n");
}

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestPki> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_.emplace(*std::move(pki));
    absl::StatusOr<TlsFiles> sidecar_files = pki_->Sidecar("node-1");
    ASSERT_TRUE(sidecar_files.ok()) << sidecar_files.status();
    auto started = InProcessSidecar::Start({.config_yaml = SecurityYaml(*sidecar_files)});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = *std::move(started);
  }

  // A ServiceHost of `name` serving mTLS with the app certificate of `name`.
  std::unique_ptr<ServiceHost> Host(const std::string& name, grpc::Service* service,
                                    CallbackHandler* callbacks = nullptr) {
    absl::StatusOr<TlsFiles> files = pki_->App(name);
    EXPECT_TRUE(files.ok()) << files.status();
    auto host = std::make_unique<ServiceHost>(ServiceHostOptions{.name = name,
                                                                 .sidecar = sidecar_->address(),
                                                                 .credentials = {.tls = *files},
                                                                 .serve_tls = *files});
    if (service != nullptr) host->AddService(service);
    if (callbacks != nullptr) host->AddCallbacks(callbacks);
    absl::Status started = host->Start();
    EXPECT_TRUE(started.ok()) << started;
    return host;
  }

  // A Mesh of app `source`, authenticated to the sidecar by its certificate.
  MeshOptions Options(const std::string& source) {
    return {.sidecar = sidecar_->address(),
            .source = source,
            .credentials = {.tls = *pki_->App(source)}};
  }

  std::optional<TestPki> pki_;
  std::unique_ptr<InProcessSidecar> sidecar_;
  greeter::GreeterService greeter_;
};

// One OnCompletion sent straight to `address` with `credentials`, as an attacker would.
grpc::Status ForgeCompletion(const std::string& address,
                             std::shared_ptr<grpc::ChannelCredentials> credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::Callback::NewStub(grpc::CreateCustomChannel(address, credentials, args));
  v1::Completion forged;
  forged.set_cid("forged-cid");
  forged.set_method("/greeter.v1.Greeter/SayHello");
  forged.set_state(v1::CALL_STATE_SUCCEEDED);
  v1::OnCompletionResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  return stub->OnCompletion(&context, forged, &response);
}

TEST_F(MtlsTest, SidecarCallsAHostOverMutualTls) {
  auto host = Host("greeter", &greeter_);
  Mesh mesh(Options("tester"));
  absl::StatusOr<std::string> reply = mesh.Invoke("greeter", kSayHello, Hello("mtls"));
  ASSERT_TRUE(reply.ok()) << reply.status();
  ::greeter::v1::HelloReply hello;
  ASSERT_TRUE(hello.ParseFromString(*reply));
  EXPECT_EQ(hello.message(), "Hello, mtls!");
}

TEST_F(MtlsTest, ForgedCompletionIsRefusedBeforeAnyHandlerAndTheSidecarsDeliveryWorks) {
  RecordedCompletions completions("greeter.v1.Greeter");
  auto greeter_host = Host("greeter", &greeter_);
  auto caller = Host("caller", nullptr, &completions);

  // An app of the same mesh, with a valid certificate of its own.
  grpc::Status as_app = ForgeCompletion(
      caller->address(),
      *tls::MeshChannelCredentials(*pki_->App("intruder"), {.kind = tls::IdentityKind::kApp}));
  EXPECT_EQ(as_app.error_code(), grpc::StatusCode::PERMISSION_DENIED) << as_app.error_message();
  EXPECT_THAT(as_app.error_message(),
              HasSubstr("only a sidecar of trust domain callmesh.local may call this server; peer "
                        "is spiffe://callmesh.local/app/intruder"));
  // TLS without a client certificate, and plaintext: no handshake.
  const TlsFiles anonymous{.ca_file = pki_->ca_file()};
  EXPECT_EQ(ForgeCompletion(caller->address(), *tls::MeshChannelCredentials(
                                                   anonymous, {.kind = tls::IdentityKind::kApp}))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ForgeCompletion(caller->address(), grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // A sidecar certificate of another mesh.
  TestPki other = *TestPki::Create();
  EXPECT_EQ(ForgeCompletion(caller->address(),
                            *tls::MeshChannelCredentials(*other.Sidecar("node-1"),
                                                         {.kind = tls::IdentityKind::kApp}))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(completions.received().empty());

  // The sidecar's own delivery of a real completion gets through.
  Mesh mesh(Options("caller"));
  absl::StatusOr<Cid> cid = mesh.InvokeAsync("greeter", kSayHello, Hello("pushed"));
  ASSERT_TRUE(cid.ok()) << cid.status();
  ASSERT_TRUE(WaitUntil([&] { return !completions.received().empty(); }));
  ASSERT_EQ(completions.received().size(), 1u);
  EXPECT_EQ(completions.received()[0].cid(), *cid);
}

TEST_F(MtlsTest, SidecarRefusesATargetOutsideTheMesh) {
  // A greeter whose certificate comes from another CA: the sidecar's handshake fails, so the
  // instance never turns healthy and the call is not sent there.
  TestPki other = *TestPki::Create();
  ServiceHost host({.name = "greeter",
                    .sidecar = sidecar_->address(),
                    .credentials = {.tls = *pki_->App("greeter")},
                    .serve_tls = *other.App("greeter")});
  host.AddService(&greeter_);
  ASSERT_TRUE(host.Start().ok());
  Mesh mesh(Options("tester"));
  absl::StatusOr<std::string> reply =
      mesh.Invoke("greeter", kSayHello, Hello("x"), {.timeout = absl::Seconds(3)});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
}

}  // namespace
}  // namespace callmesh

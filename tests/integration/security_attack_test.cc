// The attacks of issue 12 on the inbound side, replayed against a real callmeshd with tokens,
// TLS and a policy: each is refused with the status an attacker gets, and the victim's calls,
// results and registrations are checked unchanged afterwards. Then TLS (foreign CA, expired
// certificate, certificates with and without the identity, plaintext to the TLS port), rotation
// of a token and of the server certificate while calls run (no call lost, no restart), the data
// directory's permissions, and configurations that must not start.
//
// The apps: "orders" (the victim: makes calls, has results), "greeter" (the victim's target,
// registered by its own identity), "mallory" (the attacker, a valid identity of the mesh) and
// "ops" (an admin). Certificates come from tests/integration/testdata/make_test_pki.sh (the
// openssl CLI).
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "runtime/common/tls/tls_credentials.h"
#include "services/greeter/greeter.grpc.pb.h"
#include "services/greeter/greeter_service.h"
#include "tests/support/greeter_calls.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh::testing {
namespace {

using ::greeter::v1::HelloReply;
using ::greeter::v1::HelloRequest;

// A target that keeps the metadata of the last call it received.
class SpyService final : public ::greeter::v1::Greeter::Service {
 public:
  grpc::Status SayHello(grpc::ServerContext* context, const HelloRequest*,
                        HelloReply* reply) override {
    absl::MutexLock lock(&mu_);
    seen_.clear();
    for (const auto& [key, value] : context->client_metadata()) {
      seen_.emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
    }
    reply->set_message("seen");
    return grpc::Status::OK;
  }
  std::multimap<std::string, std::string> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  absl::Mutex mu_;
  std::multimap<std::string, std::string> seen_ ABSL_GUARDED_BY(mu_);
};

constexpr char kTrustDomain[] = "mesh.test";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces `path` with `contents` atomically (write aside, rename), as a rotation would.
void ReplaceFile(const std::string& path, const std::string& contents) {
  const std::string aside = path + ".new";
  std::ofstream(aside, std::ios::trunc | std::ios::binary) << contents;
  ASSERT_EQ(std::rename(aside.c_str(), path.c_str()), 0) << path;
}

std::string Text(const grpc::Status& status) {
  return absl::StrCat(status.error_code(), " ", status.error_message());
}

class SecurityAttackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new std::string(NewTempDir("pki"));
    absl::StatusOr<CommandResult> made = RunCommand(
        "/bin/sh",
        {RunfilePath("tests/integration/testdata/make_test_pki.sh"), *pki_, kTrustDomain});
    ASSERT_TRUE(made.ok()) << made.status();
    ASSERT_EQ(made->exit_code, 0) << made->err;
    tokens_ = new std::map<std::string, std::string>{{"orders", "orders-token-1"},
                                                     {"greeter", "greeter-token-1"},
                                                     {"mallory", "mallory-token-1"},
                                                     {"ops", "ops-token-1"},
                                                     {"spy", "spy-token-1"}};
    for (const auto& [app, token] : *tokens_) {
      std::ofstream(TokenFile(app)) << token << "\n";
    }
    const std::string config = absl::StrCat(
        "name: sidecar\n"
        "health_check_interval: 200ms\n"
        "callback_retry: {max_attempts: 1, initial_backoff: 10ms, max_backoff: 10ms}\n"
        "limits: {max_instances_per_identity: 3, max_watchers_per_identity: 2}\n"
        "security:\n"
        "  trust_domain: ",
        kTrustDomain,
        "\n"
        "  tls: {cert_file: ",
        *pki_, "/server.crt, key_file: ", *pki_, "/server.key, ca_file: ", *pki_,
        "/ca.crt}\n"
        "  tokens:\n",
        "    - {app: orders, file: ", TokenFile("orders"), "}\n",
        "    - {app: greeter, file: ", TokenFile("greeter"), "}\n",
        "    - {app: mallory, file: ", TokenFile("mallory"), "}\n",
        "    - {app: ops, file: ", TokenFile("ops"), "}\n",
        "    - {app: spy, file: ", TokenFile("spy"), "}\n",
        "  admins: [ops]\n"
        "  access:\n"
        "    - {callers: [ops], services: [vault]}\n"
        "    - {callers: [\"*\"], services: [greeter, spy, \"{app}\", "
        "\"{app}-async-callback\"]}\n");
    absl::StatusOr<SidecarProcess> sidecar = SidecarProcess::Start({.config_yaml = config});
    ASSERT_TRUE(sidecar.ok()) << sidecar.status();
    sidecar_ = new SidecarProcess(*std::move(sidecar));

    // The victim's target: a gRPC server registered by the identity "greeter". The sidecar calls
    // it over mTLS (security.tls has a ca_file), so it serves its app certificate and admits only
    // sidecars of the trust domain, as a ServiceHost does.
    greeter_ = new greeter::GreeterService();
    grpc::ServerBuilder builder;
    int port = 0;
    std::shared_ptr<grpc::ServerCredentials> greeter_credentials = AppServerCredentials("greeter");
    ASSERT_NE(greeter_credentials, nullptr);
    builder.AddListeningPort("127.0.0.1:0", greeter_credentials, &port);
    builder.RegisterService(greeter_);
    greeter_server_ = builder.BuildAndStart().release();
    ASSERT_NE(greeter_server_, nullptr);
    greeter_address_ = new std::string(absl::StrCat("127.0.0.1:", port));
    v1::RegisterServiceRequest registration;
    registration.set_name("greeter");
    registration.set_address(*greeter_address_);
    v1::RegisterServiceResponse registered;
    auto context = As("greeter");
    grpc::Status status = Stub()->RegisterService(context.get(), registration, &registered);
    ASSERT_TRUE(status.ok()) << Text(status);
  }

  static void TearDownTestSuite() {
    if (greeter_server_ != nullptr) greeter_server_->Shutdown();
    delete greeter_server_;
    delete greeter_;
    delete sidecar_;
  }

  // Server credentials of a target with the certificate of `app`, admitting only sidecars of the
  // trust domain (the sidecar dials targets with mTLS); null if they cannot be made.
  static std::shared_ptr<grpc::ServerCredentials> AppServerCredentials(const std::string& app) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
        tls::MeshServerCredentials(
            {.ca_file = absl::StrCat(*pki_, "/ca.crt"),
             .cert_file = absl::StrCat(*pki_, "/app-", app, ".crt"),
             .key_file = absl::StrCat(*pki_, "/app-", app, ".key")},
            /*require_client_certificate=*/true,
            tls::PeerRule{.kind = tls::IdentityKind::kSidecar, .trust_domain = kTrustDomain});
    return credentials.ok() ? *credentials : nullptr;
  }

  static std::string TokenFile(const std::string& app) {
    return absl::StrCat(*pki_, "/", app, ".token");
  }

  // A TLS channel to the sidecar that trusts the mesh CA; with `cert` ("app-orders", ...) it
  // presents that certificate and key.
  static std::shared_ptr<grpc::Channel> TlsChannel(const std::string& cert = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(*pki_ + "/ca.crt");
    if (!cert.empty()) {
      options.pem_cert_chain = ReadFile(absl::StrCat(*pki_, "/", cert, ".crt"));
      options.pem_private_key = ReadFile(absl::StrCat(*pki_, "/", cert, ".key"));
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    // A channel of its own each time, so that a new handshake sees rotated certificates.
    args.SetInt("callmesh-test-unique", ++channels_);
    return grpc::CreateCustomChannel(sidecar_->address(), grpc::SslCredentials(options), args);
  }

  static std::unique_ptr<v1::Sidecar::Stub> Stub(const std::string& cert = "") {
    return v1::Sidecar::NewStub(TlsChannel(cert));
  }

  // A call context with the bearer token of `app` ("" = none), and a deadline.
  static std::unique_ptr<grpc::ClientContext> As(const std::string& app) {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!app.empty()) context->AddMetadata("authorization", "Bearer " + tokens_->at(app));
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return context;
  }

  static grpc::Status InvokeAsync(const std::string& app, const v1::InvokeAsyncRequest& request,
                                  v1::InvokeAsyncResponse* response) {
    auto context = As(app);
    return Stub()->InvokeAsync(context.get(), request, response);
  }

  static v1::InvokeAsyncRequest Hello(const std::string& name, uint32_t delay_ms = 0) {
    HelloRequest hello;
    hello.set_name(name);
    hello.set_delay_ms(delay_ms);
    return SayHelloAsync(hello);
  }

  // The call `cid` once terminal, as `app` sees it.
  static v1::Call Wait(const std::string& app, const std::string& cid) {
    v1::WaitCallRequest request;
    request.set_cid(cid);
    request.mutable_timeout()->set_seconds(20);
    v1::Call call;
    auto context = As(app);
    grpc::Status status = Stub()->WaitCall(context.get(), request, &call);
    EXPECT_TRUE(status.ok()) << Text(status);
    return call;
  }

  static std::vector<v1::ServiceInstance> Instances(const std::string& service) {
    v1::ListServicesResponse list;
    auto context = As("ops");
    EXPECT_TRUE(Stub()->ListServices(context.get(), {}, &list).ok());
    for (const v1::ServiceInfo& info : list.services()) {
      if (info.name() == service) return {info.instances().begin(), info.instances().end()};
    }
    return {};
  }

  static grpc::Status Register(const std::string& app, const std::string& name,
                               const std::string& address) {
    v1::RegisterServiceRequest request;
    request.set_name(name);
    request.set_address(address);
    v1::RegisterServiceResponse response;
    auto context = As(app);
    return Stub()->RegisterService(context.get(), request, &response);
  }

  static grpc::Status Deregister(const std::string& app, const std::string& name,
                                 const std::string& address) {
    v1::DeregisterServiceRequest request;
    request.set_name(name);
    request.set_address(address);
    v1::DeregisterServiceResponse response;
    auto context = As(app);
    return Stub()->DeregisterService(context.get(), request, &response);
  }

  inline static std::string* pki_ = nullptr;
  inline static std::map<std::string, std::string>* tokens_ = nullptr;
  inline static SidecarProcess* sidecar_ = nullptr;
  inline static greeter::GreeterService* greeter_ = nullptr;
  inline static grpc::Server* greeter_server_ = nullptr;
  inline static std::string* greeter_address_ = nullptr;
  inline static int channels_ = 0;
};

TEST_F(SecurityAttackTest, NoOrBadCredentialsAreUnauthenticated) {
  v1::SidecarStats stats;
  auto none = As("");
  grpc::Status status = Stub()->GetStats(none.get(), {}, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "no credentials")) << Text(status);

  grpc::ClientContext forged;
  forged.AddMetadata("authorization", "Bearer orders-token-0");
  status = Stub()->GetStats(&forged, {}, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Text(status);

  v1::InvokeAsyncResponse accepted;
  auto anonymous = As("");
  status = Stub()->InvokeAsync(anonymous.get(), Hello("anonymous"), &accepted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Text(status);

  // A plaintext client on the TLS port never gets an answer from the API.
  auto plaintext = v1::Sidecar::NewStub(sidecar_->Channel());
  grpc::ClientContext plain;
  plain.AddMetadata("authorization", "Bearer " + tokens_->at("orders"));
  plain.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  status = plaintext->GetStats(&plain, {}, &stats);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << Text(status);
}

TEST_F(SecurityAttackTest, TheSourceIsTheIdentityAndAForgedClaimIsRefused) {
  v1::InvokeAsyncRequest claim = Hello("forged");
  claim.set_source("orders");
  v1::InvokeAsyncResponse accepted;
  grpc::Status status = InvokeAsync("mallory", claim, &accepted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "\"orders\"")) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "\"mallory\"")) << Text(status);

  v1::InvokeRequest invoke;
  invoke.set_service("greeter");
  invoke.set_method("greeter.v1.Greeter/SayHello");
  HelloRequest hello;
  hello.set_name("x");
  invoke.set_payload(hello.SerializeAsString());
  v1::InvokeResponse reply;
  auto metadata_claim = As("mallory");
  metadata_claim->AddMetadata("callmesh-source", "orders");
  status = Stub()->Invoke(metadata_claim.get(), invoke, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);

  // Through the transparent proxy, the same.
  auto greeter = ::greeter::v1::Greeter::NewStub(TlsChannel());
  HelloReply hello_reply;
  auto proxied = As("mallory");
  proxied->AddMetadata("callmesh-target", "greeter");
  proxied->AddMetadata("callmesh-source", "orders");
  status = greeter->SayHello(proxied.get(), hello, &hello_reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);

  // What the target is told is the caller's identity, and the caller's token stays behind.
  auto honest = As("mallory");
  honest->AddMetadata("callmesh-target", "greeter");
  status = greeter->SayHello(honest.get(), hello, &hello_reply);
  ASSERT_TRUE(status.ok()) << Text(status);
  EXPECT_EQ(hello_reply.source(), "mallory");
  auto orders = As("orders");
  status = Stub()->Invoke(orders.get(), invoke, &reply);
  ASSERT_TRUE(status.ok()) << Text(status);
  HelloReply from_orders;
  ASSERT_TRUE(from_orders.ParseFromString(reply.payload()));
  EXPECT_EQ(from_orders.source(), "orders");
}

// InvokeAsyncStream is held to what a unary InvokeAsync is: no stream without credentials; on an
// authenticated stream each call is checked on its own (a forged source and a service the
// policy forbids are refused, call by call), and an accepted call's source is the identity.
TEST_F(SecurityAttackTest, CallsOnAnInvokeAsyncStreamAreCheckedOneByOne) {
  auto round_trip = [](const std::string& app, const std::vector<v1::InvokeAsyncRequest>& requests,
                       grpc::Status* status) {
    auto context = As(app);
    auto stream = Stub()->InvokeAsyncStream(context.get());
    v1::InvokeAsyncStreamRequest message;
    for (size_t i = 0; i < requests.size(); ++i) {
      v1::InvokeAsyncStreamCall* call = message.add_calls();
      call->set_tag(i);
      *call->mutable_request() = requests[i];
    }
    stream->Write(message);
    stream->WritesDone();
    std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers;
    v1::InvokeAsyncStreamResponse read;
    while (stream->Read(&read)) {
      for (const v1::InvokeAsyncStreamAnswer& answer : read.answers())
        answers[answer.tag()] = answer;
    }
    *status = stream->Finish();
    return answers;
  };
  grpc::Status status;
  EXPECT_TRUE(round_trip("", {Hello("anonymous")}, &status).empty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Text(status);

  v1::InvokeAsyncRequest forged = Hello("forged");
  forged.set_source("orders");
  v1::InvokeAsyncRequest vault = Hello("vault");
  vault.set_service("vault");
  std::map<uint64_t, v1::InvokeAsyncStreamAnswer> answers =
      round_trip("mallory", {forged, vault, Hello("honest")}, &status);
  ASSERT_TRUE(status.ok()) << Text(status);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].code(), grpc::StatusCode::PERMISSION_DENIED) << answers[0].message();
  EXPECT_TRUE(absl::StrContains(answers[0].message(), "\"orders\"")) << answers[0].message();
  EXPECT_EQ(answers[1].code(), grpc::StatusCode::PERMISSION_DENIED) << answers[1].message();
  ASSERT_EQ(answers[2].code(), 0) << answers[2].message();
  EXPECT_EQ(Wait("mallory", answers[2].response().cid()).envelope().source(), "mallory");
}

TEST_F(SecurityAttackTest, TheCallersTokenIsNotPassedOnToTheTarget) {
  SpyService spy;
  grpc::ServerBuilder builder;
  int port = 0;
  // Any app certificate of the mesh: the sidecar checks that its peer is an app of the domain.
  builder.AddListeningPort("127.0.0.1:0", AppServerCredentials("greeter"), &port);
  builder.RegisterService(&spy);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const std::string address = absl::StrCat("127.0.0.1:", port);
  ASSERT_TRUE(Register("spy", "spy", address).ok());

  auto stub = ::greeter::v1::Greeter::NewStub(TlsChannel());
  HelloRequest hello;
  hello.set_name("x");
  HelloReply reply;
  auto proxied = As("orders");
  proxied->AddMetadata("callmesh-target", "spy");
  proxied->AddMetadata("x-app-header", "kept");
  grpc::Status status = stub->SayHello(proxied.get(), hello, &reply);
  ASSERT_TRUE(status.ok()) << Text(status);
  std::multimap<std::string, std::string> seen = spy.seen();
  EXPECT_EQ(seen.count("authorization"), 0u);
  EXPECT_EQ(seen.count("x-app-header"), 1u);  // application metadata still passes
  ASSERT_EQ(seen.count("callmesh-source"), 1u);
  EXPECT_EQ(seen.find("callmesh-source")->second, "orders");
  EXPECT_TRUE(Deregister("spy", "spy", address).ok());
  server->Shutdown();
}

TEST_F(SecurityAttackTest, TheRegistryCannotBeHijacked) {
  const std::vector<v1::ServiceInstance> before = Instances("greeter");
  ASSERT_EQ(before.size(), 1u);
  const int fake_port = FreeLoopbackPort();
  const std::string fake = absl::StrCat("127.0.0.1:", fake_port);

  grpc::Status status = Register("mallory", "greeter", fake);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "default registration rule"))
      << Text(status);
  status = Register("mallory", "orders-async-callback", fake);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  status = Deregister("mallory", "greeter", *greeter_address_);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  // The sidecar is not made to connect to and probe any address.
  status = Register("mallory", "mallory", "10.9.8.7:443");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "loopback")) << Text(status);

  const std::vector<v1::ServiceInstance> after = Instances("greeter");
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].address(), *greeter_address_);
  EXPECT_TRUE(Instances("orders-async-callback").empty());
  EXPECT_TRUE(Instances("mallory").empty());
  // The victim's calls still reach the real greeter.
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync("orders", Hello("still-mine"), &accepted).ok());
  EXPECT_EQ(Wait("orders", accepted.cid()).state(), v1::CALL_STATE_SUCCEEDED);
}

TEST_F(SecurityAttackTest, AnIdentityCannotGrowTheRegistryWithoutBound) {
  std::vector<std::string> mine;
  for (int i = 0; i < 3; ++i) {
    mine.push_back(absl::StrCat("127.0.0.1:", 40000 + i));
    grpc::Status status = Register("mallory", "mallory", mine.back());
    ASSERT_TRUE(status.ok()) << Text(status);
  }
  grpc::Status status = Register("mallory", "mallory-async-callback", "127.0.0.1:40009");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "limits.max_instances_per_identity"))
      << Text(status);
  // Another identity is not affected; a refreshed registration is not a new instance.
  EXPECT_TRUE(Register("mallory", "mallory", mine[0]).ok());
  for (const std::string& address : mine) {
    EXPECT_TRUE(Deregister("mallory", "mallory", address).ok());
  }
  EXPECT_TRUE(Register("mallory", "mallory", "127.0.0.1:40009").ok());
  EXPECT_TRUE(Deregister("mallory", "mallory", "127.0.0.1:40009").ok());
}

TEST_F(SecurityAttackTest, PublishersAreTheirIdentityAndSubscriptionsBelongToTheirService) {
  // A publish claiming the victim's name is refused; one without a claim is the caller's.
  v1::PublishRequest publish;
  publish.set_topic("order-events");
  publish.set_payload("x");
  publish.set_source("orders");
  v1::PublishResponse published;
  grpc::Status status = Stub()->Publish(As("mallory").get(), publish, &published);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  publish.clear_source();
  status = Stub()->Publish(As("mallory").get(), publish, &published);
  EXPECT_TRUE(status.ok()) << status.error_message();

  // The subscription of "orders" cannot be replayed or removed, nor its event dead letters read,
  // by another app; its owner passes the same check.
  v1::ReplaySubscriptionRequest replay;
  replay.set_topic("order-events");
  replay.set_service("orders");
  replay.set_sequence(1);
  v1::ReplaySubscriptionResponse replayed;
  status = Stub()->ReplaySubscription(As("mallory").get(), replay, &replayed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "security.registration") ||
              absl::StrContains(status.error_message(), "registration rule"))
      << status.error_message();
  status = Stub()->ReplaySubscription(As("orders").get(), replay, &replayed);
  EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  v1::UnsubscribeRequest unsubscribe;
  unsubscribe.set_topic("order-events");
  unsubscribe.set_service("orders");
  v1::UnsubscribeResponse unsubscribed;
  status = Stub()->Unsubscribe(As("mallory").get(), unsubscribe, &unsubscribed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  v1::ListEventDeadLettersRequest dead;
  v1::ListEventDeadLettersResponse dead_letters;
  status = Stub()->ListEventDeadLetters(As("mallory").get(), dead, &dead_letters);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  dead.set_subscriber("orders");
  status = Stub()->ListEventDeadLetters(As("mallory").get(), dead, &dead_letters);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  status = Stub()->ListEventDeadLetters(As("orders").get(), dead, &dead_letters);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(SecurityAttackTest, AnotherAppsCallsCannotBeReadWaitedListedOrCancelled) {
  HelloRequest secret;
  secret.set_name("secret-of-orders");
  secret.set_delay_ms(1500);
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync("orders", SayHelloAsync(secret), &accepted).ok());
  const std::string cid = accepted.cid();

  v1::GetCallRequest get;
  get.set_cid(cid);
  get.set_include_payload(true);
  v1::Call call;
  auto mallory = As("mallory");
  grpc::Status status = Stub()->GetCall(mallory.get(), get, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Text(status);
  EXPECT_FALSE(absl::StrContains(call.DebugString(), "secret-of-orders"));

  v1::WaitCallRequest wait;
  wait.set_cid(cid);
  mallory = As("mallory");
  status = Stub()->WaitCall(mallory.get(), wait, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Text(status);

  v1::CancelCallRequest cancel;
  cancel.set_cid(cid);
  mallory = As("mallory");
  status = Stub()->CancelCall(mallory.get(), cancel, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Text(status);

  v1::ListCallsResponse list;
  mallory = As("mallory");
  status = Stub()->ListCalls(mallory.get(), {}, &list);
  ASSERT_TRUE(status.ok()) << Text(status);
  for (const v1::Call& listed : list.calls()) EXPECT_EQ(listed.envelope().source(), "mallory");
  v1::ListCallsRequest theirs;
  theirs.set_source("orders");
  mallory = As("mallory");
  status = Stub()->ListCalls(mallory.get(), theirs, &list);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);

  // An admin sees it; its source sees it finish as it would have.
  auto ops = As("ops");
  ASSERT_TRUE(Stub()->GetCall(ops.get(), get, &call).ok());
  EXPECT_EQ(call.envelope().source(), "orders");
  const v1::Call finished = Wait("orders", cid);
  EXPECT_EQ(finished.state(), v1::CALL_STATE_SUCCEEDED);
  auto orders = As("orders");
  ASSERT_TRUE(Stub()->GetCall(orders.get(), get, &call).ok());
  HelloReply reply;
  ASSERT_TRUE(reply.ParseFromString(call.completion().reply()));
  EXPECT_EQ(reply.message(), "Hello, secret-of-orders!");
  EXPECT_EQ(reply.source(), "orders");
}

TEST_F(SecurityAttackTest, WatchersSeeOnlyTheirOwnCompletionsAndHoldOnlyTheirShare) {
  grpc::ClientContext watch_context;
  watch_context.AddMetadata("authorization", "Bearer " + tokens_->at("mallory"));
  auto stub = Stub();
  auto stream = stub->WatchCompletions(&watch_context, {});
  stream->WaitForInitialMetadata();

  // The victim's completion comes first; the attacker's stream must skip it.
  v1::InvokeAsyncResponse victim, own;
  ASSERT_TRUE(InvokeAsync("orders", Hello("watched"), &victim).ok());
  EXPECT_EQ(Wait("orders", victim.cid()).state(), v1::CALL_STATE_SUCCEEDED);
  ASSERT_TRUE(InvokeAsync("mallory", Hello("own"), &own).ok());
  v1::Completion first;
  ASSERT_TRUE(stream->Read(&first));
  EXPECT_EQ(first.cid(), own.cid());
  EXPECT_EQ(first.source(), "mallory");

  // Asking for another source is refused.
  grpc::ClientContext theirs_context;
  theirs_context.AddMetadata("authorization", "Bearer " + tokens_->at("mallory"));
  v1::WatchCompletionsRequest theirs;
  theirs.set_source("orders");
  auto refused = stub->WatchCompletions(&theirs_context, theirs);
  v1::Completion nothing;
  EXPECT_FALSE(refused->Read(&nothing));
  grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);

  // Two streams per identity (limits.max_watchers_per_identity); the victim still gets its own.
  grpc::ClientContext second_context, third_context, victim_context;
  second_context.AddMetadata("authorization", "Bearer " + tokens_->at("mallory"));
  third_context.AddMetadata("authorization", "Bearer " + tokens_->at("mallory"));
  victim_context.AddMetadata("authorization", "Bearer " + tokens_->at("orders"));
  auto second = stub->WatchCompletions(&second_context, {});
  second->WaitForInitialMetadata();
  auto third = stub->WatchCompletions(&third_context, {});
  EXPECT_FALSE(third->Read(&nothing));
  status = third->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "max_watchers_per_identity"));
  auto victims = stub->WatchCompletions(&victim_context, {});
  victims->WaitForInitialMetadata();
  v1::InvokeAsyncResponse later;
  ASSERT_TRUE(InvokeAsync("orders", Hello("later"), &later).ok());
  v1::Completion victims_own;
  ASSERT_TRUE(victims->Read(&victims_own));
  EXPECT_EQ(victims_own.cid(), later.cid());
  watch_context.TryCancel();
  second_context.TryCancel();
  victim_context.TryCancel();
  (void)stream->Finish();
  (void)second->Finish();
  (void)victims->Finish();
}

TEST_F(SecurityAttackTest, IdempotencyKeysAreScopedByTheCaller) {
  v1::InvokeAsyncRequest request = Hello("keyed");
  request.set_idempotency_key("order-42");
  v1::InvokeAsyncResponse first, again, stolen;
  ASSERT_TRUE(InvokeAsync("orders", request, &first).ok());
  ASSERT_TRUE(InvokeAsync("orders", request, &again).ok());
  EXPECT_TRUE(again.deduplicated());
  EXPECT_EQ(again.cid(), first.cid());
  ASSERT_TRUE(InvokeAsync("mallory", request, &stolen).ok());
  EXPECT_FALSE(stolen.deduplicated());
  EXPECT_NE(stolen.cid(), first.cid());
  EXPECT_EQ(Wait("orders", first.cid()).envelope().source(), "orders");
}

TEST_F(SecurityAttackTest, DeadLettersOnlyForTheirSourceAndAdmins) {
  // The victim's callback service is down: its result is dead-lettered after one attempt.
  const std::string down = absl::StrCat("127.0.0.1:", FreeLoopbackPort());
  ASSERT_TRUE(Register("orders", "orders-async-callback", down).ok());
  v1::InvokeAsyncResponse accepted;
  ASSERT_TRUE(InvokeAsync("orders", Hello("dead"), &accepted).ok());
  auto dead_letters = [](const std::string& app) {
    std::set<std::string> cids;
    v1::ListDeadLettersResponse list;
    auto context = As(app);
    EXPECT_TRUE(Stub()->ListDeadLetters(context.get(), {}, &list).ok());
    for (const v1::DeadLetter& dead : list.dead_letters()) cids.insert(dead.completion().cid());
    return cids;
  };
  ASSERT_TRUE(WaitUntil([&] { return dead_letters("orders").count(accepted.cid()) > 0; }));
  EXPECT_EQ(dead_letters("mallory").count(accepted.cid()), 0u);
  EXPECT_EQ(dead_letters("ops").count(accepted.cid()), 1u);
  v1::RedriveDeadLetterRequest redrive;
  redrive.set_cid(accepted.cid());
  v1::RedriveDeadLetterResponse redriven;
  auto mallory = As("mallory");
  grpc::Status status = Stub()->RedriveDeadLetter(mallory.get(), redrive, &redriven);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Text(status);
  EXPECT_EQ(dead_letters("orders").count(accepted.cid()), 1u);
  EXPECT_TRUE(Deregister("orders", "orders-async-callback", down).ok());
}

TEST_F(SecurityAttackTest, TheAccessPolicyRefusesNamingTheRule) {
  v1::InvokeRequest invoke;
  invoke.set_service("vault");
  invoke.set_method("vault.v1.Vault/Open");
  v1::InvokeResponse reply;
  auto mallory = As("mallory");
  grpc::Status status = Stub()->Invoke(mallory.get(), invoke, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "no rule in security.access allows"))
      << Text(status);
  v1::InvokeAsyncRequest async;
  async.set_service("vault");
  async.set_method("vault.v1.Vault/Open");
  v1::InvokeAsyncResponse accepted;
  status = InvokeAsync("mallory", async, &accepted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
  // The admin passes the policy (and finds no vault registered).
  auto ops = As("ops");
  status = Stub()->Invoke(ops.get(), invoke, &reply);
  EXPECT_NE(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
}

TEST_F(SecurityAttackTest, ClientCertificatesAuthenticateByTheirSpiffeId) {
  v1::SidecarStats stats;
  {
    grpc::ClientContext context;  // no token: the certificate alone
    grpc::Status status = Stub("app-orders")->GetStats(&context, {}, &stats);
    EXPECT_TRUE(status.ok()) << Text(status);
  }
  {
    v1::InvokeRequest invoke;
    invoke.set_service("greeter");
    invoke.set_method("greeter.v1.Greeter/SayHello");
    HelloRequest hello;
    hello.set_name("by-cert");
    invoke.set_payload(hello.SerializeAsString());
    v1::InvokeResponse reply;
    grpc::ClientContext context;
    ASSERT_TRUE(Stub("app-orders")->Invoke(&context, invoke, &reply).ok());
    HelloReply decoded;
    ASSERT_TRUE(decoded.ParseFromString(reply.payload()));
    EXPECT_EQ(decoded.source(), "orders");
  }
  {
    // Someone else's token next to one's own certificate.
    auto context = As("orders");
    grpc::Status status = Stub("app-mallory")->GetStats(context.get(), {}, &stats);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Text(status);
    EXPECT_TRUE(absl::StrContains(status.error_message(), "\"mallory\"")) << Text(status);
  }
  {
    grpc::ClientContext context;
    grpc::Status status = Stub("no-san")->GetStats(&context, {}, &stats);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Text(status);
    EXPECT_TRUE(absl::StrContains(status.error_message(), "names no identity")) << Text(status);
  }
  for (const char* refused : {"foreign-orders", "expired-orders"}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status status = Stub(refused)->GetStats(&context, {}, &stats);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << refused << ": " << Text(status);
  }
}

TEST_F(SecurityAttackTest, TokenRotationWhileCallsRunLosesNoCallAndNeedsNoRestart) {
  const pid_t pid = sidecar_->process().pid();
  std::vector<std::string> cids;
  for (int i = 0; i < 10; ++i) {
    v1::InvokeAsyncResponse accepted;
    ASSERT_TRUE(InvokeAsync("orders", Hello(absl::StrCat("rot-", i), 300), &accepted).ok());
    cids.push_back(accepted.cid());
  }
  const std::string old_token = tokens_->at("orders");
  ReplaceFile(TokenFile("orders"), "orders-token-2\n");
  (*tokens_)["orders"] = "orders-token-2";
  v1::SidecarStats stats;
  ASSERT_TRUE(WaitUntil([&] {
    auto context = As("orders");
    return Stub()->GetStats(context.get(), {}, &stats).ok();
  }));
  grpc::ClientContext stale;
  stale.AddMetadata("authorization", "Bearer " + old_token);
  EXPECT_EQ(Stub()->GetStats(&stale, {}, &stats).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  for (const std::string& cid : cids) {
    EXPECT_EQ(Wait("orders", cid).state(), v1::CALL_STATE_SUCCEEDED) << cid;
  }
  EXPECT_TRUE(sidecar_->process().running());
  EXPECT_EQ(sidecar_->process().pid(), pid);
}

TEST_F(SecurityAttackTest, ServerCertificateRotationWhileCallsRun) {
  const std::string rotated = ReadFile(*pki_ + "/server-rotated.crt");
  auto presented = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + tokens_->at("orders"));
    v1::SidecarStats stats;
    if (!v1::Sidecar::NewStub(channel)->GetStats(&context, {}, &stats).ok()) return std::string();
    std::vector<grpc::string_ref> pem = context.auth_context()->FindPropertyValues("x509_pem_cert");
    return pem.empty() ? std::string() : std::string(pem[0].data(), pem[0].size());
  };
  std::shared_ptr<grpc::Channel> before = TlsChannel();
  ASSERT_NE(presented(before), rotated);
  v1::InvokeAsyncResponse running;
  ASSERT_TRUE(InvokeAsync("orders", Hello("across-rotation", 500), &running).ok());

  // Key first, then certificate: gRPC keeps the old pair while the two do not match.
  ReplaceFile(*pki_ + "/server.key", ReadFile(*pki_ + "/server-rotated.key"));
  ReplaceFile(*pki_ + "/server.crt", rotated);
  ASSERT_TRUE(WaitUntil([&] { return presented(TlsChannel()) == rotated; }));
  // The connection opened before keeps working, and the call made before finishes.
  EXPECT_FALSE(presented(before).empty());
  EXPECT_EQ(Wait("orders", running.cid()).state(), v1::CALL_STATE_SUCCEEDED);
}

TEST_F(SecurityAttackTest, TheJournalIsReadableByItsOwnerOnly) {
  struct stat st;
  ASSERT_EQ(stat(sidecar_->data_dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  absl::StatusOr<CommandResult> files =
      RunCommand("/usr/bin/find", {sidecar_->data_dir(), "-type", "f"});
  ASSERT_TRUE(files.ok());
  std::istringstream lines(files->out);
  int checked = 0;
  for (std::string path; std::getline(lines, path);) {
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 077, 0u) << path << " is mode " << std::oct << (st.st_mode & 0777);
    ++checked;
  }
  EXPECT_GT(checked, 3);
}

// Configurations that must not start: exit 2 with one line naming the problem.
class SecurityConfigExitTest : public ::testing::Test {
 protected:
  CommandResult Run(const std::string& yaml, const std::string& listen = "127.0.0.1:0") {
    const std::string dir = NewTempDir("badsec");
    std::ofstream(dir + "/c.yaml") << yaml;
    absl::StatusOr<CommandResult> result = RunCommand(
        RunfilePath("runtime/sidecar/callmeshd"),
        {"--config=" + dir + "/c.yaml", "--listen=" + listen, "--data-dir=" + dir + "/d"});
    EXPECT_TRUE(result.ok()) << result.status();
    data_dir_ = dir + "/d";
    return result.ok() ? *result : CommandResult{};
  }
  std::string data_dir_;
};

TEST_F(SecurityConfigExitTest, BadSecuritySettingsExit2NamingThem) {
  CommandResult r =
      Run("security:\n  tokens: [{app: a, file: /t}]\n  access:\n"
          "    - {callers: [\"*\"], services: [\"{name}\"]}\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "c.yaml:4:")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "security.access[0].services[0]")) << r.err;

  r = Run("security:\n  tokens: [{app: a, file: /nonexistent/a.token}]\n");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, "security.tokens[0].file: cannot read token file \"/nonexistent/a.token\""))
      << r.err;
  struct stat st;
  EXPECT_NE(stat(data_dir_.c_str(), &st), 0) << "a refused start created " << data_dir_;

  const std::string pki = NewTempDir("badpki");
  std::ofstream(pki + "/t") << "token";
  std::ofstream(pki + "/c.crt") << "-----BEGIN CERTIFICATE-----\nnot really\n";
  r = Run(absl::StrCat("security:\n  tokens: [{app: a, file: ", pki, "/t}]\n  tls: {cert_file: ",
                       pki, "/c.crt, key_file: ", pki, "/missing.key}\n"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(
      absl::StrContains(r.err, "security.tls.key_file: cannot read \"" + pki + "/missing.key\""))
      << r.err;

  // A certificate that is not a sidecar's (here an app's) must not serve the Sidecar API.
  absl::StatusOr<CommandResult> made = RunCommand(
      "/bin/sh", {RunfilePath("tests/integration/testdata/make_test_pki.sh"), pki, kTrustDomain});
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_EQ(made->exit_code, 0) << made->err;
  r = Run(absl::StrCat("security:\n  trust_domain: ", kTrustDomain,
                       "\n  tokens: [{app: a, file: ", pki, "/t}]\n  tls: {cert_file: ", pki,
                       "/app-orders.crt, key_file: ", pki, "/app-orders.key}\n"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "security.tls.cert_file " + pki + "/app-orders.crt"))
      << r.err;
  EXPECT_TRUE(absl::StrContains(
      r.err, absl::StrCat("has no URI SAN spiffe://", kTrustDomain, "/sidecar/<name>")))
      << r.err;

  r = Run("", "0.0.0.0:0");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "is not a loopback address")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "security.insecure_development: true")) << r.err;
}

TEST_F(SecurityConfigExitTest, InsecureDevelopmentStartsOffLoopbackAndSaysSo) {
  absl::StatusOr<SidecarProcess> sidecar = SidecarProcess::Start(
      {.config_yaml = "security: {insecure_development: true}\n", .listen = "0.0.0.0:0"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  EXPECT_TRUE(
      absl::StrContains(sidecar->process().output(), "security.insecure_development is set"))
      << sidecar->process().output();
  EXPECT_EQ(sidecar->Stop().value_or(-1), 0);

  absl::StatusOr<SidecarProcess> loopback = SidecarProcess::Start({});
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_TRUE(absl::StrContains(loopback->process().output(), "running without authentication"))
      << loopback->process().output();
  EXPECT_EQ(loopback->Stop().value_or(-1), 0);
}

}  // namespace
}  // namespace callmesh::testing

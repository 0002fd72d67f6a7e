// `callmesh health` end to end: the CLI binary against a real callmeshd, and against a gRPC server
// in this process whose grpc.health.v1 answers the test controls (NOT_SERVING, then SERVING).
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::CommandResult;
using ::callmesh::testing::RunfilePath;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

// Health of the whole server ("") is NOT_SERVING for the first `not_serving_checks` checks, then
// SERVING; "known" is always SERVING; any other service name is NOT_FOUND, as in gRPC's own.
class ScriptedHealth final : public grpc::health::v1::Health::Service {
 public:
  explicit ScriptedHealth(int not_serving_checks) : not_serving_left_(not_serving_checks) {}

  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    ++checks_;
    if (request->service() == "known") {
      response->set_status(HealthCheckResponse::SERVING);
    } else if (!request->service().empty()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    } else {
      response->set_status(not_serving_left_-- > 0 ? HealthCheckResponse::NOT_SERVING
                                                   : HealthCheckResponse::SERVING);
    }
    return grpc::Status::OK;
  }

  int checks() const { return checks_; }

 private:
  std::atomic<int> not_serving_left_;
  std::atomic<int> checks_{0};
};

// A gRPC server on a loopback port serving only `health`.
struct HealthServer {
  explicit HealthServer(int not_serving_checks) : health(not_serving_checks) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&health);
    server = builder.BuildAndStart();
  }
  ~HealthServer() { server->Shutdown(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }

  ScriptedHealth health;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

CommandResult Health(const std::string& address, std::vector<std::string> args) {
  args.insert(args.begin(), {"--sidecar", address, "health"});
  absl::StatusOr<CommandResult> result = testing::RunCommand(
      RunfilePath("cli/callmesh"), args, {.unset_env = {"CALLMESH_SIDECAR"}}, absl::Seconds(60));
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : CommandResult{};
}

TEST(CliHealth, RunningCallmeshdIsServing) {
  absl::StatusOr<testing::SidecarProcess> sidecar = testing::SidecarProcess::Start({});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  CommandResult r = Health(sidecar->address(), {});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  ASSERT_TRUE(sidecar->Stop().ok());
}

TEST(CliHealth, NotServingExitsOneAndSaysSo) {
  HealthServer server(/*not_serving_checks=*/1000);
  CommandResult r = Health(server.address(), {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "NOT_SERVING\n");
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("UNAVAILABLE: the server at ", server.address(),
                                            " is NOT_SERVING")));
}

TEST(CliHealth, WaitAsksAgainUntilServing) {
  HealthServer server(/*not_serving_checks=*/3);
  CommandResult r = Health(server.address(), {"--wait", "--timeout", "60s"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
  EXPECT_EQ(server.health.checks(), 4);
}

TEST(CliHealth, NamedService) {
  HealthServer server(/*not_serving_checks=*/0);
  CommandResult r = Health(server.address(), {"--service", "known"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = Health(server.address(), {"--service", "nosuch.v1.Thing"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND: " + server.address() +
                               " has no health status for service \"nosuch.v1.Thing\""));
}

TEST(CliHealth, UnreachableExitsOne) {
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  CommandResult r = Health(absl::StrCat("127.0.0.1:", port), {});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE: cannot reach the sidecar at 127.0.0.1:"));
  EXPECT_EQ(r.out, "");
}

TEST(CliHealth, BadInputExitsTwo) {
  HealthServer server(/*not_serving_checks=*/0);
  CommandResult r = Health(server.address(), {"extra"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("health takes no arguments, got \"extra\""));
  r = Health(server.address(), {"--timeout", "-1s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid --timeout \"-1s\""));
  EXPECT_EQ(server.health.checks(), 0);
}

}  // namespace
}  // namespace callmesh

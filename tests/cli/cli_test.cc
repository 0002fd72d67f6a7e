// `callmesh` end to end: the CLI binary as a subprocess, a real callmeshd, and services hosted in
// this process: the greeter ("greeter"), the greeter plus a test-only Echo service with its own
// SayHello ("multi"), and a static service whose address nothing listens on ("ghost", a callback
// that cannot be delivered).
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "callmesh/v1/sidecar.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/sdk/service_host.h"
#include "services/greeter/greeter_service.h"
#include "tests/cli/testdata/echo.grpc.pb.h"
#include "tests/support/process.h"
#include "tests/support/sidecar_process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::CommandResult;
using ::callmesh::testing::ProcessOptions;
using ::callmesh::testing::RunfilePath;
using ::testing::HasSubstr;

class EchoService final : public clitest::v1::Echo::Service {
  grpc::Status SayHello(grpc::ServerContext*, const clitest::v1::EchoRequest* request,
                        clitest::v1::EchoReply* reply) override {
    reply->set_text("echo hello " + request->text());
    return grpc::Status::OK;
  }
  grpc::Status Echo(grpc::ServerContext*, const clitest::v1::EchoRequest* request,
                    clitest::v1::EchoReply* reply) override {
    reply->set_text(request->text() + "/" + request->inner().label());
    return grpc::Status::OK;
  }
};

// A loopback port nothing listens on (bound once, then released).
int UnusedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ghost_port_ = UnusedPort();
    auto started = testing::SidecarProcess::Start(
        {.config_yaml = absl::StrCat(
             "callback_retry: {max_attempts: 2, initial_backoff: 50ms, max_backoff: 100ms}\n"
             "services:\n"
             "  - name: ghost\n"
             "    addresses: [127.0.0.1:",
             ghost_port_, "]\n")});
    ASSERT_TRUE(started.ok()) << started.status();
    sidecar_ = new testing::SidecarProcess(*std::move(started));
    greeter_ = new greeter::GreeterService();
    echo_ = new EchoService();
    multi_greeter_ = new greeter::GreeterService();
    greeter_host_ = testing::HostService("greeter", sidecar_->address(), greeter_).release();
    multi_host_ = new ServiceHost({.name = "multi", .sidecar = sidecar_->address()});
    multi_host_->AddService(multi_greeter_);
    multi_host_->AddService(echo_);
    ASSERT_TRUE(multi_host_->Start().ok());
  }

  static void TearDownTestSuite() {
    delete multi_host_;
    delete greeter_host_;
    delete multi_greeter_;
    delete echo_;
    delete greeter_;
    if (sidecar_ != nullptr) (void)sidecar_->Stop();
    delete sidecar_;
  }

  // Runs `callmesh --sidecar <ours> args...`.
  static CommandResult Cli(std::vector<std::string> args, ProcessOptions options = {}) {
    args.insert(args.begin(), {"--sidecar", sidecar_->address()});
    return CliRaw(std::move(args), std::move(options));
  }

  // Runs `callmesh args...` with CALLMESH_SIDECAR unset unless `options` set it.
  static CommandResult CliRaw(std::vector<std::string> args, ProcessOptions options = {}) {
    options.unset_env.push_back("CALLMESH_SIDECAR");
    absl::StatusOr<CommandResult> result =
        testing::RunCommand(RunfilePath("cli/callmesh"), args, options, absl::Seconds(90));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  // The CID printed by `invoke --async`.
  static std::string InvokeAsync(const std::string& json, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"invoke", "greeter", "SayHello", "-d", json, "--async"};
    args.insert(args.end(), extra.begin(), extra.end());
    CommandResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return std::string(absl::StripAsciiWhitespace(r.out));
  }

  static testing::SidecarProcess* sidecar_;
  static greeter::GreeterService* greeter_;
  static greeter::GreeterService* multi_greeter_;
  static EchoService* echo_;
  static ServiceHost* greeter_host_;
  static ServiceHost* multi_host_;
  static int ghost_port_;
};

testing::SidecarProcess* CliTest::sidecar_ = nullptr;
greeter::GreeterService* CliTest::greeter_ = nullptr;
greeter::GreeterService* CliTest::multi_greeter_ = nullptr;
EchoService* CliTest::echo_ = nullptr;
ServiceHost* CliTest::greeter_host_ = nullptr;
ServiceHost* CliTest::multi_host_ = nullptr;
int CliTest::ghost_port_ = 0;

// --- help and usage errors -------------------------------------------------------------------

TEST_F(CliTest, HelpListsEveryCommandAndEachCommandHasHelpWithExamples) {
  CommandResult r = CliRaw({"--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const char* command : {"invoke", "calls get", "calls wait", "calls ls", "calls cancel",
                              "watch", "services", "dead-letters ls", "dead-letters redrive",
                              "publish", "topics", "subscriptions replay", "subscriptions rm"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("  ") + command)) << command;
    std::vector<std::string> words = absl::StrSplit(command, ' ');
    std::vector<std::string> help_args = {"help"};
    help_args.insert(help_args.end(), words.begin(), words.end());
    CommandResult help = CliRaw(help_args);
    EXPECT_EQ(help.exit_code, 0) << command << ": " << help.err;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("Usage: callmesh ", command)));
    EXPECT_THAT(help.out, HasSubstr("Examples:\n  callmesh "));
    words.push_back("--help");
    CommandResult flag_help = CliRaw(words);
    EXPECT_EQ(flag_help.exit_code, 0) << command;
    EXPECT_EQ(flag_help.out, help.out) << command;
  }
  CommandResult invoke = CliRaw({"invoke", "-h"});
  EXPECT_THAT(invoke.out, HasSubstr("--idempotency-key KEY"));
  EXPECT_THAT(invoke.out, HasSubstr("--sidecar ADDR"));
}

TEST_F(CliTest, NoCommandIsAUsageError) {
  CommandResult r = CliRaw({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("callmesh: missing command"));
  EXPECT_THAT(r.err, HasSubstr("Commands:"));
}

TEST_F(CliTest, UnknownCommandSubcommandAndFlagGetHints) {
  CommandResult r = Cli({"invok", "greeter", "SayHello"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: unknown command \"invok\"; did you mean \"invoke\"? (see 'callmesh "
            "--help')\n");
  r = Cli({"calls", "lst"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown subcommand \"lst\" of 'calls'; did you mean \"ls\"?"));
  r = Cli({"invoke", "greeter", "SayHello", "--timout", "5s"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: unknown flag --timout for 'callmesh invoke'; did you mean --timeout? (see "
            "'callmesh invoke --help')\n");
  r = Cli({"calls"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'callmesh calls' needs a subcommand: get, wait, ls, cancel"));
  r = Cli({"-o", "yaml", "services"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid --output \"yaml\""));
  r = Cli({"invoke", "greeter", "SayHello", "--timeout", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid --timeout \"soon\""));
  r = Cli({"invoke", "greeter"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invoke needs SERVICE and METHOD"));
}

// --- invoke ------------------------------------------------------------------------------------

TEST_F(CliTest, InvokePrintsTheReplyAsJson) {
  CommandResult r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"name": "world"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"message\": \"Hello, world!\""));
  EXPECT_THAT(r.out, HasSubstr("\"source\": \"callmesh-cli\""));
  EXPECT_EQ(r.err, "");
  // The full method name, headers and a timeout.
  r = Cli({"invoke", "greeter", "greeter.v1.Greeter/SayHello", "-d", R"({"name": "full"})",
           "--header", "tenant=acme", "-H", "x-trace=1", "--timeout", "5s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, full!"));
}

TEST_F(CliTest, VerboseInvokeShowsHeadersTrailersStatusAndTime) {
  CommandResult r = Cli(
      {"invoke", "greeter", "SayHello", "-d", R"({"name": "loud"})", "-v", "-H", "tenant=acme"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, loud!"));
  EXPECT_THAT(r.err, HasSubstr("> Invoke service=greeter method=greeter.v1.Greeter/SayHello"));
  EXPECT_THAT(r.err, HasSubstr("> tenant: acme\n"));
  EXPECT_THAT(r.err, HasSubstr("< (trailer) callmesh-cid: "));
  EXPECT_THAT(r.err, ::testing::ContainsRegex("< OK in [0-9.]+(us|ms|s)\n"));
  // A failed call shows its status the same way, and still exits 1.
  r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"name": "x", "failCode": 9})", "-v"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("< FAILED_PRECONDITION: "));
}

TEST_F(CliTest, DescribeShowsServicesMethodsAndMessages) {
  CommandResult r = Cli({"describe", "greeter"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("greeter.v1.Greeter is a service:\nservice Greeter {"));
  EXPECT_THAT(
      r.out, HasSubstr("rpc SayHello(.greeter.v1.HelloRequest) returns (.greeter.v1.HelloReply);"));
  r = Cli({"describe", "greeter", "SayHello"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("greeter.v1.Greeter/SayHello is a method:"));
  EXPECT_THAT(r.out, HasSubstr("greeter.v1.HelloRequest is a message:\nmessage HelloRequest {"));
  EXPECT_THAT(r.out, HasSubstr("greeter.v1.HelloReply is a message:"));
  r = Cli({"describe", "greeter", "greeter.v1.HelloReply", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"kind\": \"message\""));
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"greeter.v1.HelloReply\""));
  r = Cli({"describe", "greeter", "Nope"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("nor is Nope a message type of greeter"));
  r = Cli({"describe"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("describe needs SERVICE"));
}

TEST_F(CliTest, InvokeReadsTheRequestFromAFileOrStdin) {
  const std::string path = testing::NewTempDir("cli") + "/hello.json";
  std::ofstream(path) << "{\n  \"name\": \"file\"\n}\n";
  CommandResult r = Cli({"invoke", "greeter", "SayHello", "-d", "@" + path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, file!"));
  r = Cli({"invoke", "greeter", "SayHello", "-d", "-"}, {.stdin_data = R"({"name": "stdin"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, stdin!"));
  r = Cli({"invoke", "greeter", "SayHello", "-d", "@/nonexistent/x.json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "callmesh: cannot read request file /nonexistent/x.json\n");
}

TEST_F(CliTest, FailedCallExitsOneWithTheStatusCodeName) {
  CommandResult r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"name": "x", "failCode": 9})"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: FAILED_PRECONDITION: "));
  EXPECT_EQ(r.out, "");
  // An empty name is the greeter's INVALID_ARGUMENT: still a failed call, not a usage error.
  r = Cli({"invoke", "greeter", "SayHello", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: INVALID_ARGUMENT: "));
}

TEST_F(CliTest, MalformedJsonNamesLineAndColumn) {
  CommandResult r = Cli({"invoke", "greeter", "SayHello", "-d", "{\"name\": }"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: bad request for greeter.v1.Greeter/SayHello: malformed JSON at line 1, "
            "column 10: expected a value, got '}'\n");
  r = Cli({"invoke", "greeter", "SayHello", "-d", "-"},
          {.stdin_data = "{\n  \"name\": \"x\",\n  \"delayMs\" 3\n}\n"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("malformed JSON at line 3, column 13: expected ':' after member "
                               "name \"delayMs\""));
  r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"name": 12})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("invalid JSON for greeter.v1.HelloRequest"));
}

TEST_F(CliTest, UnknownFieldNamesItsPathAndType) {
  CommandResult r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"nmae": "x"})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: bad request for greeter.v1.Greeter/SayHello: unknown field \"nmae\" in "
            "greeter.v1.HelloRequest (line 1, column 2); did you mean \"name\"?\n");
  r = Cli({"invoke", "multi", "Echo", "-d",
           R"({"text": "t", "items": [{"label": "a"}, {"lable": "b"}]})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown field \"items[1].lable\" in clitest.v1.Inner (line 1, "
                               "column 42); did you mean \"label\"?"));
  r = Cli({"invoke", "multi", "Echo", "-d", R"({"text": "t", "inner": {"label": "in"}})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"text\": \"t/in\""));
}

TEST_F(CliTest, AmbiguousShortMethodListsTheCandidates) {
  CommandResult r = Cli({"invoke", "multi", "SayHello", "-d", R"({"name": "x"})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: ambiguous method SayHello on multi: candidates clitest.v1.Echo/SayHello, "
            "greeter.v1.Greeter/SayHello (pass the full name)\n");
  r = Cli({"invoke", "multi", "clitest.v1.Echo/SayHello", "-d", R"({"text": "x"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("echo hello x"));
  r = Cli({"invoke", "multi", "greeter.v1.Greeter.SayHello", "-d", R"({"name": "dotted"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, dotted!"));
}

TEST_F(CliTest, UnknownServiceAndMethodAreInputErrors) {
  CommandResult r = Cli({"invoke", "nosuch", "SayHello", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("callmesh: unknown service \"nosuch\" (registered: "));
  EXPECT_THAT(r.err, HasSubstr("greeter"));
  r = Cli({"invoke", "greeter", "SayGoodbye", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: unknown method SayGoodbye on greeter (methods: "
            "greeter.v1.Greeter/SayHello)\n");
  r = Cli({"invoke", "greeter", "nope.v1.Nope/SayHello", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown gRPC service nope.v1.Nope on greeter"));
}

TEST_F(CliTest, ProtosetReplacesReflection) {
  CommandResult r = Cli({"--protoset", RunfilePath("tests/cli/testdata/greeter.protoset"), "invoke",
                         "greeter", "SayHello", "-d", R"({"name": "protoset"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Hello, protoset!"));
  r = Cli({"--protoset", "/nonexistent.protoset", "invoke", "greeter", "SayHello", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "callmesh: cannot read protoset /nonexistent.protoset\n");
}

// --- the sidecar address -------------------------------------------------------------------------

TEST_F(CliTest, UnreachableSidecarNamesTheAddressTried) {
  const std::string address = absl::StrCat("127.0.0.1:", UnusedPort());
  CommandResult r = CliRaw({"--sidecar", address, "services"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("callmesh: UNAVAILABLE: cannot reach the sidecar at ",
                                            address, " (--sidecar)")));
  // Without a CA the CLI speaks plaintext, which a TLS port refuses just like a closed one.
  EXPECT_THAT(r.err, HasSubstr("if it serves TLS, give its CA with --tls-ca or CALLMESH_TLS_CA"));
  r = CliRaw({"calls", "ls"}, {.env = {"CALLMESH_SIDECAR=" + address}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("cannot reach the sidecar at ", address,
                                            " (CALLMESH_SIDECAR)")));
}

// The sidecar address and the names given to invoke follow the grammar of the sidecar and the SDK
// (runtime/common/names.h), and a malformed one is a usage error (exit 2), found before connecting.
TEST_F(CliTest, MalformedAddressOrNameIsAUsageError) {
  CommandResult r = CliRaw({"--sidecar", "my$host:80", "services"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: --sidecar: has an invalid host \"my$host\" in \"my$host:80\": a host name "
            "may only contain letters, digits, '-' and '.'\n");
  r = CliRaw({"calls", "ls"}, {.env = {"CALLMESH_SIDECAR=host:0"}});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: CALLMESH_SIDECAR: must be host:port with a port from 1 to 65535, got "
            "\"host:0\"\n");
  r = Cli({"invoke", "bad name", "SayHello", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("callmesh: SERVICE: may only contain letters, digits"));
  r = Cli({"invoke", "greeter", "SayHello", "-d", "{}", "--async", "--callback", "a/b"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("callmesh: --callback: may only contain letters, digits"));
}

TEST_F(CliTest, SidecarAddressComesFromTheEnvironment) {
  CommandResult r =
      CliRaw({"services", "-o", "names"}, {.env = {"CALLMESH_SIDECAR=" + sidecar_->address()}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("greeter\n"));
}

// --- async calls ---------------------------------------------------------------------------------

TEST_F(CliTest, AsyncPrintsTheCidThenCallsGetAndWaitShowTheReply) {
  const std::string cid = InvokeAsync(R"({"name": "async"})", {"--idempotency-key", "k-async"});
  ASSERT_EQ(cid.size(), 36u) << cid;
  // The same key returns the same CID.
  EXPECT_EQ(InvokeAsync(R"({"name": "async"})", {"--idempotency-key", "k-async"}), cid);

  CommandResult r = Cli({"calls", "wait", cid, "--timeout", "30s"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"state\": \"CALL_STATE_SUCCEEDED\""));
  EXPECT_THAT(r.out, HasSubstr("\"message\": \"Hello, async!\""));  // reply decoded

  r = Cli({"calls", "get", cid});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("\"cid\": \"", cid, "\"")));
  EXPECT_THAT(r.out, HasSubstr("\"message\": \"Hello, async!\""));

  r = Cli({"calls", "get", cid, "-o", "table", "--payload"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("state            SUCCEEDED"));
  EXPECT_THAT(r.out, HasSubstr("reply            {\"message\":\"Hello, async!\""));

  r = Cli({"calls", "ls", "--state", "succeeded", "--service", "greeter"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("CID"));
  EXPECT_THAT(r.out, HasSubstr(cid));
  r = Cli({"calls", "ls", "--state", "failed", "-o", "json", "--limit", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr(cid)));
  r = Cli({"calls", "ls", "--state", "done"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown call state \"done\" (one of: accepted, running"));
}

TEST_F(CliTest, AsyncJsonOutputAndUnknownCid) {
  CommandResult r =
      Cli({"-o", "json", "invoke", "greeter", "SayHello", "-d", R"({"name": "json"})", "--async"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"cid\": \""));
  EXPECT_THAT(r.out, HasSubstr("\"deduplicated\": false"));
  r = Cli({"calls", "get", "01a209b2-0000-7000-8000-000000000000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: NOT_FOUND: GetCall: "));
  r = Cli({"calls", "get"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(CliTest, WaitFlagPrintsTheReplyOrTheFailure) {
  CommandResult r = Cli(
      {"invoke", "greeter", "SayHello", "-d", R"({"name": "patient", "delayMs": 200})", "--wait"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"message\": \"Hello, patient!\""));
  EXPECT_EQ(r.err, "");  // stderr is not a terminal: no progress line
  r = Cli({"invoke", "greeter", "SayHello", "-d", R"({"name": "x", "failCode": 7})", "--wait"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: PERMISSION_DENIED: call "));
  EXPECT_EQ(r.out, "");
}

TEST_F(CliTest, CancelEndsARunningCall) {
  const std::string cid = InvokeAsync(R"({"name": "slow", "delayMs": 60000})");
  ASSERT_FALSE(cid.empty());
  CommandResult r = Cli({"calls", "cancel", cid, "--reason", "test says stop"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(cid));
  r = Cli({"calls", "wait", cid, "--timeout", "30s"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.out, HasSubstr("\"state\": \"CALL_STATE_CANCELLED\""));
  EXPECT_THAT(r.err, HasSubstr("callmesh: CANCELLED: call " + cid + " was cancelled"));
}

TEST_F(CliTest, CallsGetShowsWhatARunningCallWaitsFor) {
  const std::string cid = InvokeAsync(R"({"name": "stuck", "delayMs": 60000})");
  ASSERT_FALSE(cid.empty());
  CommandResult r;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        r = Cli({"calls", "get", cid, "-o", "table"});
        return r.exit_code == 0 && absl::StrContains(r.out, "waiting_for") &&
               absl::StrContains(r.out, "the reply of attempt 1");
      },
      absl::Seconds(60)))
      << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("the reply of attempt 1 from " + greeter_host_->address()));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("last_instance +" + greeter_host_->address()));
  r = Cli({"calls", "get", cid, "-o", "json"});
  EXPECT_THAT(r.out, HasSubstr("\"waitingFor\": \"the reply of attempt 1 from "));
  ASSERT_EQ(Cli({"calls", "cancel", cid}).exit_code, 0);
}

TEST_F(CliTest, StatsShowsTheSidecarsCounters) {
  ASSERT_FALSE(InvokeAsync(R"({"name": "counted"})").empty());
  CommandResult r = Cli({"stats"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("STAT"));
  EXPECT_THAT(r.out, HasSubstr("async_accepted"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("journal_healthy +yes "));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("async_accepted +[1-9]"));
  r = Cli({"stats", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"journalHealthy\": true"));
  r = Cli({"stats", "extra"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("stats takes no arguments, got \"extra\""));
}

TEST_F(CliTest, WatchPrintsCompletionsAsJsonLinesUntilInterrupted) {
  absl::StatusOr<testing::Process> watch =
      testing::Process::Start(RunfilePath("cli/callmesh"),
                              {"--sidecar", sidecar_->address(), "watch", "--source", "watch-test"},
                              "watch", ProcessOptions{.unset_env = {"CALLMESH_SIDECAR"}});
  ASSERT_TRUE(watch.ok()) << watch.status();
  // The stream may not be open yet when the first call completes: call until one is seen.
  std::vector<std::string> cids;
  const bool seen = testing::WaitUntil(
      [&] {
        cids.push_back(InvokeAsync(R"({"name": "watched"})", {"--source", "watch-test"}));
        absl::SleepFor(absl::Milliseconds(200));
        for (const std::string& cid : cids) {
          if (absl::StrContains(watch->stdout_text(), cid)) return true;
        }
        return false;
      },
      absl::Seconds(30));
  ASSERT_TRUE(seen) << watch->stdout_text() << watch->stderr_text();
  const std::string line = watch->stdout_text().substr(0, watch->stdout_text().find('\n'));
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
  EXPECT_THAT(line, HasSubstr("\"state\":\"CALL_STATE_SUCCEEDED\""));
  EXPECT_THAT(line, HasSubstr("\"reply\":{\"message\":\"Hello, watched!\""));
  EXPECT_THAT(line, HasSubstr("\"source\":\"watch-test\""));
  watch->Signal(SIGINT);
  absl::StatusOr<int> code = watch->Wait(absl::Seconds(30));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0) << watch->stderr_text();
  EXPECT_EQ(watch->stderr_text(), "");
}

// --- services and dead letters -------------------------------------------------------------------

TEST_F(CliTest, ServicesShowsInstancesHealthAndMethods) {
  CommandResult r = Cli({"services"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("SERVICE"));
  EXPECT_THAT(r.out, HasSubstr(greeter_host_->address()));
  EXPECT_THAT(r.out, HasSubstr("healthy"));
  EXPECT_THAT(r.out, HasSubstr("greeter.v1.Greeter/SayHello"));
  EXPECT_THAT(r.out, HasSubstr("clitest.v1.Echo/Echo"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("127.0.0.1:", ghost_port_)));
  // Why an instance is unhealthy and since when; a static one is never removed.
  EXPECT_THAT(r.out, HasSubstr("unhealthy (static): health check failed: "));
  EXPECT_THAT(r.out, HasSubstr(", since 20"));
  r = Cli({"services", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"name\": \"greeter\""));
  EXPECT_THAT(r.out, HasSubstr("\"methods\": ["));
  r = Cli({"services", "-o", "names"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ghost\n"));
  EXPECT_THAT(r.out, HasSubstr("multi\n"));
}

TEST_F(CliTest, UndeliverableCallbackIsDeadLetteredListedAndRedriven) {
  const std::string cid = InvokeAsync(R"({"name": "lost"})", {"--callback", "ghost"});
  ASSERT_FALSE(cid.empty());
  CommandResult r;
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        r = Cli({"dead-letters", "ls", "-o", "json"});
        return r.exit_code == 0 && absl::StrContains(r.out, cid);
      },
      absl::Seconds(60)))
      << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"callback\": \"ghost\""));
  EXPECT_THAT(r.out, HasSubstr("\"message\": \"Hello, lost!\""));
  r = Cli({"dead-letters", "ls"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("CALLBACK"));
  EXPECT_THAT(r.out, HasSubstr(cid + "  ghost"));
  r = Cli({"dead-letters", "redrive", cid});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "redriven " + cid + "\n");
  r = Cli({"dead-letters", "redrive", "01a209b2-0000-7000-8000-000000000000"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: NOT_FOUND: RedriveDeadLetter: "));
}

TEST_F(CliTest, PublishTopicsReplayAndEventDeadLetters) {
  // A service subscribes to "greetings" with greeter's SayHello (registered through the API).
  {
    auto stub = v1::Sidecar::NewStub(sidecar_->Channel());
    grpc::ClientContext context;
    v1::RegisterServiceRequest request;
    request.set_name("greeting-log");
    request.set_address(greeter_host_->address());
    request.add_grpc_services("greeter.v1.Greeter");
    v1::Subscription* sub = request.add_subscriptions();
    sub->set_topic("greetings");
    sub->set_method("greeter.v1.Greeter/SayHello");
    sub->set_mode(v1::SUBSCRIPTION_MODE_ORDERED);
    v1::RegisterServiceResponse response;
    ASSERT_TRUE(stub->RegisterService(&context, request, &response).ok());
  }
  CommandResult r = Cli({"publish", "greetings", "-d", R"({"name": "pub"})"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"sequence\": \"1\""));
  EXPECT_THAT(r.out, HasSubstr("\"subscribers\": 1"));
  // The event JSON is checked against the subscriber's request type.
  r = Cli({"publish", "greetings", "-d", R"({"nmae": "x"})"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad event for greeter.v1.HelloRequest: unknown field \"nmae\""));
  r = Cli({"publish", "no/such", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "callmesh: TOPIC: may only contain letters, digits, '.', '_' and '-', got "
            "\"no/such\"\n");
  r = Cli({"publish", "nobody-listens", "-d", "{}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("has no subscription to take the event type from"));
  // Delivered: the subscription's position reaches the event.
  ASSERT_TRUE(testing::WaitUntil([] {
    CommandResult topics = Cli({"topics", "-o", "json"});
    return topics.exit_code == 0 && absl::StrContains(topics.out, "\"position\": \"1\"");
  })) << Cli({"topics"}).out;
  EXPECT_THAT(Cli({"topics"}).out, HasSubstr("greeting-log  greeter.v1.Greeter/SayHello  ORDERED"));
  r = Cli({"subscriptions", "replay", "greetings", "greeting-log", "--from-sequence", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\"nextSequence\": \"1\""));
  r = Cli({"subscriptions", "replay", "greetings", "greeting-log"});
  EXPECT_EQ(r.exit_code, 2);
  r = Cli({"dead-letters", "ls", "--kind", "event"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ID  EVENT ID"));
  r = Cli({"dead-letters", "redrive", "greetings/greeting-log/1"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("callmesh: NOT_FOUND: RedriveEventDeadLetter: "));
  r = Cli({"subscriptions", "rm", "greetings", "greeting-log"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "unsubscribed greeting-log from greetings\n");
}

}  // namespace
}  // namespace callmesh

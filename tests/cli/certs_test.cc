// `callmesh certs init` and `callmesh certs issue` run as the real binary: files, modes, what
// `openssl` says of them, and one-line errors with exit code 2 that change nothing.
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/files.h"
#include "tests/support/process.h"

namespace callmesh {
namespace {

using ::callmesh::testing::CommandResult;
using ::callmesh::testing::FileMode;
using ::callmesh::testing::FileText;
using ::callmesh::testing::NewTempDir;
using ::callmesh::testing::RunCommand;
using ::callmesh::testing::RunfilePath;
using ::testing::HasSubstr;

CommandResult Cli(const std::vector<std::string>& args) {
  absl::StatusOr<CommandResult> r = RunCommand(RunfilePath("cli/callmesh"), args);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

CommandResult Openssl(const std::vector<std::string>& args) {
  absl::StatusOr<CommandResult> r = RunCommand("/usr/bin/openssl", args);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommandResult{};
}

TEST(CertsCommand, InitAndIssueMakeCertificatesOpensslVerifies) {
  const std::string dir = NewTempDir("certs") + "/mesh";
  CommandResult init = Cli({"certs", "init", "--dir", dir, "--trust-domain", "acme.internal"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  EXPECT_EQ(init.out, absl::StrCat("mesh CA spiffe://acme.internal: wrote ", dir,
                                   "/ca.key (0600) and ", dir, "/ca.crt, valid 3650 days\n"));
  CommandResult app = Cli({"certs", "issue", "greeter", "--dir", dir, "--days", "7"});
  ASSERT_EQ(app.exit_code, 0) << app.err;
  EXPECT_EQ(app.out, absl::StrCat("spiffe://acme.internal/app/greeter: wrote ", dir,
                                  "/greeter.key (0600) and ", dir, "/greeter.crt, valid 7 days\n"));
  CommandResult sidecar = Cli({"certs", "issue", "node-1", "--kind", "sidecar", "--dir", dir});
  ASSERT_EQ(sidecar.exit_code, 0) << sidecar.err;
  EXPECT_THAT(sidecar.out, HasSubstr("spiffe://acme.internal/sidecar/node-1: wrote " + dir +
                                     "/sidecar-node-1.key"));
  EXPECT_EQ(FileMode(dir + "/ca.key"), 0600u);
  EXPECT_EQ(FileMode(dir + "/greeter.key"), 0600u);
  EXPECT_EQ(FileMode(dir + "/sidecar-node-1.key"), 0600u);

  CommandResult verify = Openssl(
      {"verify", "-CAfile", dir + "/ca.crt", dir + "/greeter.crt", dir + "/sidecar-node-1.crt"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(verify.out, absl::StrCat(dir, "/greeter.crt: OK\n", dir, "/sidecar-node-1.crt: OK\n"));
  CommandResult text =
      Openssl({"x509", "-noout", "-ext", "subjectAltName", "-in", dir + "/sidecar-node-1.crt"});
  EXPECT_THAT(text.out, HasSubstr("URI:spiffe://acme.internal/sidecar/node-1"));
}

TEST(CertsCommand, ErrorsAreOneLineExitTwoAndChangeNothing) {
  const std::string dir = NewTempDir("certs");
  CommandResult no_ca = Cli({"certs", "issue", "greeter", "--dir", dir});
  EXPECT_EQ(no_ca.exit_code, 2);
  EXPECT_EQ(no_ca.err, absl::StrCat("callmesh: no mesh CA in ", dir, " (", dir,
                                    "/ca.crt and ca.key); run 'callmesh certs init' first\n"));
  ASSERT_EQ(Cli({"certs", "init", "--dir", dir}).exit_code, 0);
  const std::string ca = FileText(dir + "/ca.crt");
  CommandResult again = Cli({"certs", "init", "--dir", dir});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_EQ(again.err, absl::StrCat("callmesh: ", dir,
                                    "/ca.key already exists; pass --force to overwrite it\n"));
  EXPECT_EQ(FileText(dir + "/ca.crt"), ca);

  CommandResult bad_name = Cli({"certs", "issue", "bad/name", "--dir", dir});
  EXPECT_EQ(bad_name.exit_code, 2);
  EXPECT_THAT(bad_name.err, HasSubstr("callmesh: name: may only contain"));
  CommandResult bad_kind = Cli({"certs", "issue", "x", "--kind", "admin", "--dir", dir});
  EXPECT_EQ(bad_kind.exit_code, 2);
  EXPECT_EQ(bad_kind.err, "callmesh: invalid --kind \"admin\": expected app or sidecar\n");
  CommandResult bad_days = Cli({"certs", "issue", "x", "--days", "0", "--dir", dir});
  EXPECT_EQ(bad_days.exit_code, 2);
  EXPECT_THAT(bad_days.err, HasSubstr("invalid --days \"0\""));
  CommandResult bad_domain = Cli({"certs", "init", "--dir", dir + "/2", "--trust-domain", "A B"});
  EXPECT_EQ(bad_domain.exit_code, 2);
  EXPECT_THAT(bad_domain.err, HasSubstr("trust domain: may only contain"));

  CommandResult listing = *RunCommand("/bin/ls", {dir});
  EXPECT_EQ(listing.out, "ca.crt\nca.key\n");
}

TEST(CertsCommand, HelpDocumentsTheCredentialVariables) {
  CommandResult help = Cli({"--help"});
  EXPECT_THAT(help.out, HasSubstr("certs init"));
  for (const char* variable :
       {"$CALLMESH_TOKEN_FILE", "$CALLMESH_TLS_CA", "$CALLMESH_TLS_CERT", "$CALLMESH_TLS_KEY"}) {
    EXPECT_THAT(help.out, HasSubstr(variable));
  }
  CommandResult issue = Cli({"certs", "issue", "--help"});
  EXPECT_THAT(issue.out, HasSubstr("spiffe://TRUST_DOMAIN/app/NAME"));
  EXPECT_THAT(issue.out, HasSubstr("--tls-cert FILE"));
}

}  // namespace
}  // namespace callmesh

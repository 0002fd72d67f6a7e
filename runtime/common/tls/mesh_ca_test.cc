#include "runtime/common/tls/mesh_ca.h"

#include <stdio.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/common/tls/test_pki.h"
#include "tests/support/files.h"

namespace callmesh::tls {
namespace {

using ::callmesh::testing::FileMode;
using ::callmesh::testing::FileText;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// `command`'s exit code and its stdout and stderr together.
std::pair<int, std::string> Shell(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  std::string output;
  char buffer[512];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WEXITSTATUS(status), output};
}

TEST(MeshCa, IssuesCertificatesThatOpensslVerifiesWithTheSpiffeSan) {
  const std::string dir = NewTestDir("ca") + "/certs";
  absl::StatusOr<IssuedFiles> ca = InitMeshCa({.dir = dir, .trust_domain = "acme.internal"});
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_EQ(ca->spiffe_id, "spiffe://acme.internal");
  EXPECT_EQ(FileMode(dir), 0700u);
  EXPECT_EQ(FileMode(ca->key_file), 0600u);
  EXPECT_EQ(FileMode(ca->cert_file), 0644u);

  absl::StatusOr<IssuedFiles> app = IssueCertificate({.dir = dir, .name = "greeter", .days = 30});
  ASSERT_TRUE(app.ok()) << app.status();
  EXPECT_EQ(app->cert_file, dir + "/greeter.crt");
  EXPECT_EQ(FileMode(app->key_file), 0600u);
  EXPECT_THAT(*UriSansOfCertificateFile(app->cert_file),
              ElementsAre("spiffe://acme.internal/app/greeter"));
  absl::StatusOr<IssuedFiles> sidecar =
      IssueCertificate({.dir = dir, .kind = IdentityKind::kSidecar, .name = "node-1"});
  ASSERT_TRUE(sidecar.ok()) << sidecar.status();
  EXPECT_EQ(sidecar->cert_file, dir + "/sidecar-node-1.crt");
  EXPECT_THAT(*UriSansOfCertificateFile(sidecar->cert_file),
              ElementsAre("spiffe://acme.internal/sidecar/node-1"));

  for (const std::string& cert : {app->cert_file, sidecar->cert_file}) {
    // Verified as a TLS client and as a TLS server certificate.
    for (const char* purpose : {"sslclient", "sslserver"}) {
      auto [code, output] = Shell(
          absl::StrCat("openssl verify -purpose ", purpose, " -CAfile ", ca->cert_file, " ", cert));
      EXPECT_EQ(code, 0) << output;
      EXPECT_THAT(output, HasSubstr(": OK"));
    }
  }
  // The key belongs to the certificate.
  auto [cert_code, cert_key] =
      Shell(absl::StrCat("openssl x509 -noout -pubkey -in ", app->cert_file));
  auto [key_code, key_pub] = Shell(absl::StrCat("openssl pkey -pubout -in ", app->key_file));
  EXPECT_EQ(cert_code, 0);
  EXPECT_EQ(key_code, 0);
  EXPECT_EQ(cert_key, key_pub);
  auto [text_code, text] = Shell(absl::StrCat("openssl x509 -noout -text -in ", app->cert_file));
  EXPECT_THAT(text, HasSubstr("URI:spiffe://acme.internal/app/greeter"));
  EXPECT_THAT(text, HasSubstr("CA:FALSE"));
  EXPECT_THAT(text, HasSubstr("TLS Web Server Authentication, TLS Web Client Authentication"));
}

TEST(MeshCa, AnotherCaDoesNotVerify) {
  const std::string dir = NewTestDir("ca");
  ASSERT_TRUE(InitMeshCa({.dir = dir + "/one"}).ok());
  ASSERT_TRUE(InitMeshCa({.dir = dir + "/two"}).ok());
  ASSERT_TRUE(IssueCertificate({.dir = dir + "/one", .name = "greeter"}).ok());
  auto [code, output] =
      Shell(absl::StrCat("openssl verify -CAfile ", dir, "/two/ca.crt ", dir, "/one/greeter.crt"));
  EXPECT_NE(code, 0) << output;
}

TEST(MeshCa, ExpiredCertificateIsRefusedByOpenssl) {
  const std::string dir = NewTestDir("ca");
  ASSERT_TRUE(InitMeshCa({.dir = dir}).ok());
  ASSERT_TRUE(
      IssueCertificate(
          {.dir = dir, .name = "old", .days = 1, .valid_from = absl::Now() - absl::Hours(72)})
          .ok());
  auto [code, output] =
      Shell(absl::StrCat("openssl verify -CAfile ", dir, "/ca.crt ", dir, "/old.crt"));
  EXPECT_NE(code, 0);
  EXPECT_THAT(output, HasSubstr("expired"));
}

TEST(MeshCa, ExistingFilesAreKeptWithoutForce) {
  const std::string dir = NewTestDir("ca");
  ASSERT_TRUE(InitMeshCa({.dir = dir}).ok());
  const std::string ca_cert = FileText(dir + "/ca.crt");
  absl::StatusOr<IssuedFiles> again = InitMeshCa({.dir = dir});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.status().message(), HasSubstr(dir + "/ca.key already exists; pass --force"));
  EXPECT_EQ(FileText(dir + "/ca.crt"), ca_cert);

  ASSERT_TRUE(IssueCertificate({.dir = dir, .name = "greeter"}).ok());
  const std::string greeter = FileText(dir + "/greeter.crt");
  EXPECT_EQ(IssueCertificate({.dir = dir, .name = "greeter"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(FileText(dir + "/greeter.crt"), greeter);
  ASSERT_TRUE(IssueCertificate({.dir = dir, .name = "greeter", .force = true}).ok());
  EXPECT_NE(FileText(dir + "/greeter.crt"), greeter);
  ASSERT_TRUE(InitMeshCa({.dir = dir, .force = true}).ok());
  EXPECT_NE(FileText(dir + "/ca.crt"), ca_cert);
}

TEST(MeshCa, BadInputIsRefusedAndWritesNothing) {
  const std::string dir = NewTestDir("ca");
  EXPECT_THAT(InitMeshCa({.dir = dir, .trust_domain = "Bad Domain"}).status().message(),
              HasSubstr("trust domain: may only contain"));
  EXPECT_THAT(InitMeshCa({.dir = dir, .days = 0}).status().message(),
              HasSubstr("days: must be between 1 and"));
  EXPECT_THAT(IssueCertificate({.dir = dir, .name = "greeter"}).status().message(),
              HasSubstr("run 'callmesh certs init' first"));
  ASSERT_TRUE(InitMeshCa({.dir = dir}).ok());
  absl::StatusOr<IssuedFiles> bad = IssueCertificate({.dir = dir, .name = "../evil"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("name: may only contain"));
  auto [code, listing] = Shell("ls " + dir);
  EXPECT_EQ(listing, "ca.crt\nca.key\n");
}

}  // namespace
}  // namespace callmesh::tls

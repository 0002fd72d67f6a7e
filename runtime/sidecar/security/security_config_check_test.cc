#include "runtime/sidecar/security/security_config_check.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/sidecar/config/config_loader.h"

namespace callmesh::sidecar::security {
namespace {

// The error of loading `yaml` from a file as callmeshd does (file:line:column: key: problem);
// "" if it loads.
std::string LoadError(const std::string& yaml, const std::vector<ConfigOverride>& overrides = {}) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", getpid(), "-s.yaml");
  std::ofstream(path, std::ios::trunc) << yaml;
  absl::StatusOr<v1::SidecarConfig> config = LoadAndValidateConfig(path, overrides);
  if (config.ok()) return "";
  std::string message(config.status().message());
  return message.substr(message.find("s.yaml") + 6);
}

TEST(SecurityConfigCheck, LoopbackListensAreRecognised) {
  for (const char* listen : {"127.0.0.1:4770", "127.1.2.3:0", "localhost:1", "[::1]:4770"}) {
    EXPECT_TRUE(IsLoopbackListen(listen)) << listen;
  }
  for (const char* listen : {"0.0.0.0:4770", "[::]:4770", "10.0.0.1:1", "host:1", "128.0.0.1:1"}) {
    EXPECT_FALSE(IsLoopbackListen(listen)) << listen;
  }
}

TEST(SecurityConfigCheck, NonLoopbackListenNeedsTlsAndAuthenticationOrSaysInsecure) {
  const std::string refused = LoadError("listen: 0.0.0.0:4770\n");
  EXPECT_TRUE(absl::StartsWith(refused, ":1:9: listen: \"0.0.0.0:4770\" is not a loopback address"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused, "security.tls (cert_file, key_file)")) << refused;
  EXPECT_TRUE(absl::StrContains(refused, "security.insecure_development: true")) << refused;
  // The flag that moved the listen address is named.
  EXPECT_TRUE(absl::StrContains(LoadError("", {{"listen", "0.0.0.0:1", "--listen"}}),
                                "is not a loopback address"));
  EXPECT_EQ(LoadError("listen: 0.0.0.0:4770\nsecurity: {insecure_development: true}\n"), "");
  // Tokens alone, in plaintext, are not enough off loopback.
  EXPECT_TRUE(absl::StrContains(
      LoadError("listen: 0.0.0.0:4770\nsecurity:\n  tokens: [{app: a, file: /t}]\n"),
      "is not a loopback address"));
  EXPECT_EQ(LoadError("listen: 0.0.0.0:4770\nsecurity:\n  tokens: [{app: a, file: /t}]\n"
                      "  tls: {cert_file: /c, key_file: /k}\n"),
            "");
}

TEST(SecurityConfigCheck, MalformedPolicyNamesFileLineAndKey) {
  struct Case {
    std::string yaml;
    std::string expected;
  };
  const std::string auth = "security:\n  tokens: [{app: a, file: /t}]\n";
  const std::vector<Case> cases = {
      {"security: {trust_domain: x}\n",
       ":1:11: security: authenticates no one: add tokens or tls.ca_file"},
      {auth + "  trust_domain: Mesh.Example\n",
       ":3:17: security.trust_domain: may only contain a-z"},
      {"security:\n  tls: {cert_file: /c, ca_file: /ca}\n", "security.tls.key_file: is required"},
      {"security:\n  tokens: [{app: a, file: /t}]\n  tls: {cert_file: /c, key_file: /k, "
       "require_client_certificate: true}\n",
       "security.tls.require_client_certificate: needs security.tls.ca_file"},
      {"security:\n  tokens: [{app: \"a b\", file: /t}]\n",
       ":2:18: security.tokens[0].app: may only contain"},
      {"security:\n  tokens: [{app: a}]\n", "security.tokens[0].file: is required"},
      {auth + "  admins: [\"\"]\n", ":3:12: security.admins[0]: is required"},
      {auth + "  registration:\n    - services: [a]\n",
       "security.registration[0].apps: at least one pattern is required"},
      {auth + "  registration:\n    - apps: [\"*\"]\n      services: [\"{name}\"]\n",
       ":5:18: security.registration[0].services[0]: the only placeholder is {app}"},
      {auth + "  access:\n    - callers: [\"*\"]\n      services: [\"\"]\n",
       ":5:18: security.access[0].services[0]: must not be empty"},
      {auth + "  access:\n    - {callers: [a], services: [b], action: MAYBE}\n", "action"},
      {auth + "  acess: []\n", "acess"},
      {auth + "  access:\n    - {callers: [a], services: [b], methods: [\"*/Get*\"], "
              "action: deny}\n",
       ""},
  };
  for (const Case& c : cases) {
    const std::string error = LoadError(c.yaml);
    if (c.expected.empty()) {
      EXPECT_EQ(error, "") << c.yaml;
    } else {
      EXPECT_TRUE(absl::StrContains(error, c.expected)) << c.yaml << "\n got: " << error;
    }
  }
}

}  // namespace
}  // namespace callmesh::sidecar::security

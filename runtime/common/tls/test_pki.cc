#include "runtime/common/tls/test_pki.h"

#include <stdlib.h>

#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"

namespace callmesh::tls {

std::string NewTestDir(const std::string& prefix) {
  const char* root = std::getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(root != nullptr ? root : "/tmp", "/", prefix, "-XXXXXX");
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  const char* made = ::mkdtemp(buffer.data());
  return made == nullptr ? "" : std::string(made);
}

absl::StatusOr<TestPki> TestPki::Create(const std::string& trust_domain) {
  const std::string dir = NewTestDir("pki");
  if (dir.empty()) return absl::InternalError("cannot create a temporary directory");
  absl::StatusOr<IssuedFiles> ca = InitMeshCa({.dir = dir, .trust_domain = trust_domain});
  if (!ca.ok()) return ca.status();
  return TestPki(dir, trust_domain);
}

absl::StatusOr<TlsFiles> TestPki::App(const std::string& name, const IssueOptions& options) const {
  return Issue(IdentityKind::kApp, name, options);
}

absl::StatusOr<TlsFiles> TestPki::Sidecar(const std::string& name,
                                          const IssueOptions& options) const {
  return Issue(IdentityKind::kSidecar, name, options);
}

absl::StatusOr<TlsFiles> TestPki::Issue(IdentityKind kind, const std::string& name,
                                        IssueOptions options) const {
  options.dir = dir_;
  options.kind = kind;
  options.name = name;
  options.force = true;
  absl::StatusOr<IssuedFiles> files = IssueCertificate(options);
  if (!files.ok()) return files.status();
  return TlsFiles{.ca_file = ca_file(), .cert_file = files->cert_file, .key_file = files->key_file};
}

}  // namespace callmesh::tls

// Test support: a throw-away mesh CA in a fresh temporary directory, and the TLS files of any app
// or sidecar identity issued by it, for tests that run real TLS on loopback.
//
//   TestPki pki = *TestPki::Create();                      // trust domain callmesh.local
//   TlsFiles sidecar = *pki.Sidecar("a");                  // spiffe://callmesh.local/sidecar/a
//   TlsFiles greeter = *pki.App("greeter");                // spiffe://callmesh.local/app/greeter
//
// Every TlsFiles names the CA's certificate as ca_file. Not thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "runtime/common/tls/mesh_ca.h"
#include "runtime/common/tls/tls_credentials.h"

namespace callmesh::tls {

class TestPki {
 public:
  // A new CA under $TEST_TMPDIR (or /tmp).
  static absl::StatusOr<TestPki> Create(const std::string& trust_domain = kDefaultTrustDomain);

  // Issues (or re-issues: the files are overwritten) the identity's key and certificate.
  absl::StatusOr<TlsFiles> App(const std::string& name, const IssueOptions& options = {}) const;
  absl::StatusOr<TlsFiles> Sidecar(const std::string& name, const IssueOptions& options = {}) const;

  const std::string& dir() const { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.crt"; }
  const std::string& trust_domain() const { return trust_domain_; }

 private:
  TestPki(std::string dir, std::string trust_domain)
      : dir_(std::move(dir)), trust_domain_(std::move(trust_domain)) {}
  absl::StatusOr<TlsFiles> Issue(IdentityKind kind, const std::string& name,
                                 IssueOptions options) const;

  std::string dir_;
  std::string trust_domain_;
};

// A fresh empty directory under $TEST_TMPDIR (or /tmp).
std::string NewTestDir(const std::string& prefix);

}  // namespace callmesh::tls

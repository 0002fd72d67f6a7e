// A mesh certificate authority in a directory: the CA's key and self-signed certificate, and the
// keys and certificates it issues to apps and sidecars (EC P-256, SHA-256, X.509 v3), made with
// OpenSSL's libcrypto. What `callmesh certs init` and `callmesh certs issue` run.
//
//   CALLMESH_RETURN_IF_ERROR(InitMeshCa({.dir = "certs", .trust_domain = "acme.internal"}));
//   absl::StatusOr<IssuedFiles> files = IssueCertificate(
//       {.dir = "certs", .kind = IdentityKind::kApp, .name = "greeter"});
//   // certs/greeter.key (0600), certs/greeter.crt with URI SAN spiffe://acme.internal/app/greeter
//
// Layout of the directory:
//   ca.key, ca.crt                the CA (ca.crt carries the URI SAN spiffe://<trust_domain>, so
//                                 the trust domain is read back from it when issuing)
//   <name>.key, <name>.crt        an app's identity
//   sidecar-<name>.key, .crt      a sidecar's identity (spiffe://<td>/sidecar/<name>)
// Issued certificates are valid for client and server authentication (apps serve mTLS to their
// sidecar and present the same certificate to it); keys are written 0600, certificates 0644.
//
// Errors: INVALID_ARGUMENT for a bad trust domain, name or validity; ALREADY_EXISTS naming the
// file when an output exists and `force` is not set (nothing is written then); NOT_FOUND when
// issuing without a CA; a filesystem or OpenSSL failure names the file and OpenSSL's reason.
// Each output is written to a temporary file and renamed, so a failure leaves no partial file.
// Thread-compatible (no shared state besides the directory).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/common/tls/spiffe_id.h"

namespace callmesh::tls {

inline constexpr int kDefaultCaDays = 3650;
inline constexpr int kDefaultCertificateDays = 365;

struct CaOptions {
  std::string dir = ".";
  std::string trust_domain = kDefaultTrustDomain;
  int days = kDefaultCaDays;
  bool force = false;
};

struct IssueOptions {
  std::string dir = ".";
  IdentityKind kind = IdentityKind::kApp;
  std::string name;
  int days = kDefaultCertificateDays;
  bool force = false;
  // Start of validity (tests issue expired certificates with a time in the past).
  absl::Time valid_from = absl::Now();
};

struct IssuedFiles {
  std::string key_file;
  std::string cert_file;
  // The SPIFFE ID in the certificate's URI SAN.
  std::string spiffe_id;
};

// Creates the directory (0700) if needed, then ca.key and ca.crt.
absl::StatusOr<IssuedFiles> InitMeshCa(const CaOptions& options);

// Issues a key and a certificate signed by the CA in `options.dir`.
absl::StatusOr<IssuedFiles> IssueCertificate(const IssueOptions& options);

// The file names of an identity in a CA directory ("<dir>/<name>.key", "<dir>/sidecar-<name>.crt").
std::string KeyFileOf(const std::string& dir, IdentityKind kind, const std::string& name);
std::string CertFileOf(const std::string& dir, IdentityKind kind, const std::string& name);

// The URI SANs of the first certificate in the PEM file `cert_file`. For tests and diagnostics.
absl::StatusOr<std::vector<std::string>> UriSansOfCertificateFile(const std::string& cert_file);

}  // namespace callmesh::tls

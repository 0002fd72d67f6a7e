#include "runtime/common/tls/mesh_ca.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "runtime/common/names.h"
#include "runtime/common/status_macros.h"

namespace callmesh::tls {
namespace {

// Certificates start a little in the past, so a peer whose clock is slightly behind accepts them.
constexpr absl::Duration kBackdate = absl::Minutes(5);
constexpr int kMaxDays = 36500;

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;

// OpenSSL's queued errors as one phrase (and the queue cleared).
std::string OpenSslReason() {
  std::string reason;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    absl::StrAppend(&reason, reason.empty() ? "" : "; ", buffer);
  }
  return reason.empty() ? "unknown OpenSSL error" : reason;
}

absl::Status OpenSslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpenSslReason()));
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::Status RefuseExisting(const std::vector<std::string>& paths, bool force) {
  if (force) return absl::OkStatus();
  for (const std::string& path : paths) {
    if (Exists(path)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " already exists; pass --force to overwrite it"));
    }
  }
  return absl::OkStatus();
}

absl::Status EnsureDirectory(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(dir, " exists and is not a directory"));
  }
  return absl::PermissionDeniedError(
      absl::StrCat("cannot create directory ", dir, ": ", std::strerror(errno)));
}

// Writes `contents` to `path` with `mode` through a temporary file and a rename.
absl::Status WriteFileAtomically(const std::string& path, const std::string& contents,
                                 mode_t mode) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  // The umask may have narrowed `mode`; a pre-existing temporary may have had another mode.
  bool ok = ::fchmod(fd, mode) == 0;
  size_t written = 0;
  while (ok && written < contents.size()) {
    const ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) written += static_cast<size_t>(n);
  }
  ok = ok && ::fsync(fd) == 0;
  const int saved_errno = errno;
  ::close(fd);
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    const int error = ok ? errno : saved_errno;
    ::unlink(temporary.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyPtr> NewKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("generating an EC P-256 key");
  return key;
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("encoding the private key");
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertificatePem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("encoding the certificate");
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<X509Ptr> ReadCertificate(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return OpenSslError(absl::StrCat(path, " is not a PEM certificate"));
  return cert;
}

absl::StatusOr<KeyPtr> ReadKey(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) return OpenSslError(absl::StrCat(path, " is not a PEM private key"));
  return key;
}

std::vector<std::string> UriSans(X509* cert) {
  std::vector<std::string> uris;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return uris;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
    uris.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                      static_cast<size_t>(ASN1_STRING_length(uri)));
  }
  GENERAL_NAMES_free(names);
  return uris;
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  if (extension == nullptr) {
    return OpenSslError(absl::StrCat("building extension ", OBJ_nid2sn(nid), "=", value));
  }
  const int added = X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (!added) return OpenSslError(absl::StrCat("adding extension ", OBJ_nid2sn(nid)));
  return absl::OkStatus();
}

struct CertificateSpec {
  std::string common_name;
  std::string uri_san;
  bool is_ca = false;
  absl::Time valid_from;
  int days = 0;
};

// A certificate for `key` per `spec`, signed by `issuer_key` (self-signed when `issuer` is null).
absl::StatusOr<X509Ptr> MakeCertificate(const CertificateSpec& spec, EVP_PKEY* key, X509* issuer,
                                        EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (cert == nullptr || !X509_set_version(cert.get(), 2)) {
    return OpenSslError("creating a certificate");
  }
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslError("drawing a serial number");
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* serial_number = BN_bin2bn(serial, sizeof(serial), nullptr);
  const bool serial_set = serial_number != nullptr &&
                          BN_to_ASN1_INTEGER(serial_number, X509_get_serialNumber(cert.get()));
  BN_free(serial_number);
  if (!serial_set) return OpenSslError("setting the serial number");
  const time_t not_before = absl::ToTimeT(spec.valid_from - kBackdate);
  const time_t not_after = absl::ToTimeT(spec.valid_from + absl::Hours(24) * spec.days);
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), not_before) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), not_after)) {
    return OpenSslError("setting the validity");
  }
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>("callmesh"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                  -1, -1, 0)) {
    return OpenSslError("setting the subject");
  }
  X509* signer = issuer == nullptr ? cert.get() : issuer;
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) ||
      !X509_set_pubkey(cert.get(), key)) {
    return OpenSslError("setting the issuer and key");
  }
  if (spec.is_ca) {
    CALLMESH_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    CALLMESH_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    CALLMESH_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE"));
    CALLMESH_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_key_usage,
                                          "critical,digitalSignature,keyEncipherment"));
    CALLMESH_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth"));
  }
  CALLMESH_RETURN_IF_ERROR(AddExtension(cert.get(), signer, NID_subject_key_identifier, "hash"));
  if (!spec.is_ca) {
    CALLMESH_RETURN_IF_ERROR(
        AddExtension(cert.get(), signer, NID_authority_key_identifier, "keyid:always"));
  }
  CALLMESH_RETURN_IF_ERROR(
      AddExtension(cert.get(), signer, NID_subject_alt_name, absl::StrCat("URI:", spec.uri_san)));
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return OpenSslError("signing the certificate");
  }
  return cert;
}

absl::Status ValidateDays(int days) {
  if (days < 1 || days > kMaxDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("days: must be between 1 and ", kMaxDays, ", got ", days));
  }
  return absl::OkStatus();
}

absl::Status WriteKeyAndCertificate(EVP_PKEY* key, X509* cert, const IssuedFiles& files) {
  CALLMESH_ASSIGN_OR_RETURN(std::string key_pem, KeyPem(key));
  CALLMESH_ASSIGN_OR_RETURN(std::string cert_pem, CertificatePem(cert));
  CALLMESH_RETURN_IF_ERROR(WriteFileAtomically(files.key_file, key_pem, 0600));
  return WriteFileAtomically(files.cert_file, cert_pem, 0644);
}

}  // namespace

std::string KeyFileOf(const std::string& dir, IdentityKind kind, const std::string& name) {
  return absl::StrCat(dir, "/", kind == IdentityKind::kSidecar ? "sidecar-" : "", name, ".key");
}

std::string CertFileOf(const std::string& dir, IdentityKind kind, const std::string& name) {
  return absl::StrCat(dir, "/", kind == IdentityKind::kSidecar ? "sidecar-" : "", name, ".crt");
}

absl::StatusOr<IssuedFiles> InitMeshCa(const CaOptions& options) {
  CALLMESH_RETURN_IF_ERROR(ValidateTrustDomain(options.trust_domain, "trust domain"));
  CALLMESH_RETURN_IF_ERROR(ValidateDays(options.days));
  IssuedFiles files{.key_file = absl::StrCat(options.dir, "/ca.key"),
                    .cert_file = absl::StrCat(options.dir, "/ca.crt"),
                    .spiffe_id = TrustDomainId(options.trust_domain)};
  CALLMESH_RETURN_IF_ERROR(RefuseExisting({files.key_file, files.cert_file}, options.force));
  CALLMESH_RETURN_IF_ERROR(EnsureDirectory(options.dir));
  CALLMESH_ASSIGN_OR_RETURN(KeyPtr key, NewKey());
  CALLMESH_ASSIGN_OR_RETURN(
      X509Ptr cert,
      MakeCertificate({.common_name = absl::StrCat("callmesh CA ", options.trust_domain),
                       .uri_san = files.spiffe_id,
                       .is_ca = true,
                       .valid_from = absl::Now(),
                       .days = options.days},
                      key.get(), nullptr, key.get()));
  CALLMESH_RETURN_IF_ERROR(WriteKeyAndCertificate(key.get(), cert.get(), files));
  return files;
}

absl::StatusOr<IssuedFiles> IssueCertificate(const IssueOptions& options) {
  CALLMESH_RETURN_IF_ERROR(ValidateDays(options.days));
  CALLMESH_RETURN_IF_ERROR(ValidateServiceName(options.name, "name"));
  const std::string ca_cert_file = absl::StrCat(options.dir, "/ca.crt");
  const std::string ca_key_file = absl::StrCat(options.dir, "/ca.key");
  if (!Exists(ca_cert_file) || !Exists(ca_key_file)) {
    return absl::NotFoundError(absl::StrCat("no mesh CA in ", options.dir, " (", ca_cert_file,
                                            " and ca.key); run 'callmesh certs init' first"));
  }
  CALLMESH_ASSIGN_OR_RETURN(X509Ptr ca_cert, ReadCertificate(ca_cert_file));
  CALLMESH_ASSIGN_OR_RETURN(KeyPtr ca_key, ReadKey(ca_key_file));
  if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        absl::StrCat(ca_key_file, " is not the key of ", ca_cert_file));
  }
  std::string trust_domain;
  for (const std::string& uri : UriSans(ca_cert.get())) {
    absl::StatusOr<std::string> domain = ParseTrustDomainId(uri);
    if (domain.ok()) trust_domain = *domain;
  }
  if (trust_domain.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(ca_cert_file, " names no trust domain (no URI SAN spiffe://<trust-domain>); ",
                     "it was not made by 'callmesh certs init'"));
  }
  const MeshIdentity identity{
      .trust_domain = trust_domain, .kind = options.kind, .name = options.name};
  IssuedFiles files{.key_file = KeyFileOf(options.dir, options.kind, options.name),
                    .cert_file = CertFileOf(options.dir, options.kind, options.name),
                    .spiffe_id = SpiffeId(identity)};
  CALLMESH_RETURN_IF_ERROR(RefuseExisting({files.key_file, files.cert_file}, options.force));
  CALLMESH_ASSIGN_OR_RETURN(KeyPtr key, NewKey());
  CALLMESH_ASSIGN_OR_RETURN(X509Ptr cert, MakeCertificate({.common_name = options.name,
                                                           .uri_san = files.spiffe_id,
                                                           .is_ca = false,
                                                           .valid_from = options.valid_from,
                                                           .days = options.days},
                                                          key.get(), ca_cert.get(), ca_key.get()));
  CALLMESH_RETURN_IF_ERROR(WriteKeyAndCertificate(key.get(), cert.get(), files));
  return files;
}

absl::StatusOr<std::vector<std::string>> UriSansOfCertificateFile(const std::string& cert_file) {
  CALLMESH_ASSIGN_OR_RETURN(X509Ptr cert, ReadCertificate(cert_file));
  return UriSans(cert.get());
}

}  // namespace callmesh::tls

// `callmesh certs init` and `callmesh certs issue`: a mesh CA and the certificates of apps and
// sidecars (runtime/common/tls/mesh_ca.h). Local files only; no sidecar is contacted.
#include <cerrno>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "runtime/common/tls/mesh_ca.h"

namespace callmesh::cli {
namespace {

using tls::IdentityKind;

// Problems with what the user asked for exit 2; a failing file system or OpenSSL exits 1.
absl::Status Classified(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kFailedPrecondition:
      return AsInputError(status);
    default:
      return status;
  }
}

absl::StatusOr<int> DaysFlag(const ParsedArgs& args, int fallback) {
  if (!args.Has("days")) return fallback;
  int days = 0;
  if (!absl::SimpleAtoi(args.Get("days"), &days) || days < 1) {
    return InputError(
        absl::StrCat("invalid --days \"", args.Get("days"), "\": expected a positive number"));
  }
  return days;
}

absl::Status RunInit(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(absl::StrCat("certs init takes no arguments, got \"", args.positionals[0],
                                   "\" (use --dir DIR)"));
  }
  absl::StatusOr<int> days = DaysFlag(args, tls::kDefaultCaDays);
  if (!days.ok()) return days.status();
  absl::StatusOr<tls::IssuedFiles> files =
      tls::InitMeshCa({.dir = args.Get("dir", "."),
                       .trust_domain = args.Get("trust-domain", tls::kDefaultTrustDomain),
                       .days = *days,
                       .force = args.Has("force")});
  if (!files.ok()) return Classified(files.status());
  context.out() << "mesh CA " << files->spiffe_id << ": wrote " << files->key_file << " (0600) and "
                << files->cert_file << ", valid " << *days << " days\n";
  return absl::OkStatus();
}

absl::Status RunIssue(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.size() != 1) {
    return InputError(args.positionals.empty()
                          ? "certs issue needs the NAME of an app (or of a sidecar with "
                            "--kind sidecar)"
                          : absl::StrCat("certs issue takes one NAME, got ",
                                         args.positionals.size(), " arguments"));
  }
  IdentityKind kind = IdentityKind::kApp;
  const std::string kind_text = args.Get("kind", "app");
  if (kind_text == "sidecar") {
    kind = IdentityKind::kSidecar;
  } else if (kind_text != "app") {
    return InputError(absl::StrCat("invalid --kind \"", kind_text, "\": expected app or sidecar"));
  }
  absl::StatusOr<int> days = DaysFlag(args, tls::kDefaultCertificateDays);
  if (!days.ok()) return days.status();
  absl::StatusOr<tls::IssuedFiles> files = tls::IssueCertificate({.dir = args.Get("dir", "."),
                                                                  .kind = kind,
                                                                  .name = args.positionals[0],
                                                                  .days = *days,
                                                                  .force = args.Has("force")});
  if (!files.ok()) return Classified(files.status());
  context.out() << files->spiffe_id << ": wrote " << files->key_file << " (0600) and "
                << files->cert_file << ", valid " << *days << " days\n";
  return absl::OkStatus();
}

FlagSpec DirFlag() {
  return {.name = "dir",
          .value_name = "DIR",
          .help = "directory of the mesh CA (default: the current directory)"};
}

FlagSpec ForceFlag() { return {.name = "force", .help = "overwrite existing files"}; }

}  // namespace

std::vector<Command> CertsCommands() {
  return {
      Command{
          .path = "certs init",
          .summary = "Create a mesh CA: ca.key (0600) and a self-signed ca.crt",
          .arguments = "",
          .description =
              "Creates the certificate authority of a mesh in --dir (made 0700 if new): an EC\n"
              "P-256 key ca.key (0600) and a self-signed certificate ca.crt whose URI SAN\n"
              "spiffe://TRUST_DOMAIN names the trust domain. ca.crt is the ca_file of the "
              "sidecar's\n"
              "security.tls and of CALLMESH_TLS_CA; keep ca.key private. Existing files are kept\n"
              "unless --force is given.",
          .flags = {DirFlag(),
                    {.name = "trust-domain",
                     .value_name = "DOMAIN",
                     .help = absl::StrCat("SPIFFE trust domain (default ", tls::kDefaultTrustDomain,
                                          "); lower-case letters, digits, '.', '-', '_'")},
                    {.name = "days",
                     .value_name = "N",
                     .help = absl::StrCat("validity in days (default ", tls::kDefaultCaDays, ")")},
                    ForceFlag()},
          .examples = "  callmesh certs init --dir certs --trust-domain acme.internal\n",
          .run = RunInit,
      },
      Command{
          .path = "certs issue",
          .summary = "Issue a key and a certificate for an app or a sidecar, signed by the mesh CA",
          .arguments = "NAME",
          .description =
              "Writes NAME.key (0600) and NAME.crt into --dir, signed by the CA there. The\n"
              "certificate's URI SAN is spiffe://TRUST_DOMAIN/app/NAME, the identity of app NAME\n"
              "(its mesh name), or with --kind sidecar spiffe://TRUST_DOMAIN/sidecar/NAME in\n"
              "sidecar-NAME.key and sidecar-NAME.crt, the identity callmeshd presents (its\n"
              "security.tls cert_file and key_file). Certificates serve for TLS clients and\n"
              "servers. NAME follows the mesh name rules. Existing files are kept unless --force.",
          .flags = {DirFlag(),
                    {.name = "kind", .value_name = "KIND", .help = "app (default) or sidecar"},
                    {.name = "days",
                     .value_name = "N",
                     .help = absl::StrCat("validity in days (default ",
                                          tls::kDefaultCertificateDays, ")")},
                    ForceFlag()},
          .examples = "  callmesh certs issue greeter --dir certs\n"
                      "  callmesh certs issue node-1 --kind sidecar --dir certs\n",
          .run = RunIssue,
      },
  };
}

}  // namespace callmesh::cli

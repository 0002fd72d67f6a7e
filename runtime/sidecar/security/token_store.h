// Bearer tokens of the Sidecar API (security.tokens): which identity a presented token
// authenticates. Each token is a tls::TokenFile (runtime/common/tls/token_file.h): read from the
// file named in the config (surrounding whitespace ignored), read again when the file changes
// (rotation: replace the file; a re-read that fails keeps the last good token, logged once),
// looked at no more often than every `recheck_every` on the injected Clock, so a burst of calls
// costs no system calls. Tokens are compared in constant time.
//
//   auto tokens = TokenStore::Load(config.security().tokens(), Clock::Real());
//   if (!tokens.ok()) return tokens.status();
//   // "security.tokens[0].file: cannot read token file \"/x\": No such file or directory"
//   std::optional<std::string> app = (*tokens)->Identify(presented);
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "runtime/common/clock.h"
#include "runtime/common/tls/token_file.h"

namespace callmesh::sidecar::security {

// True if `a` equals `b`; the time taken depends on their lengths only, not on where they differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class TokenStore {
 public:
  // Reads every token file. INVALID_ARGUMENT "security.tokens[i].file: <tls::ReadTokenFile's
  // error>" (it names the file: cannot read, is empty, holds an unsendable character). `clock`
  // (not owned) must outlive the store.
  static absl::StatusOr<std::unique_ptr<TokenStore>> Load(
      const google::protobuf::RepeatedPtrField<v1::TokenConfig>& tokens, Clock* clock,
      absl::Duration recheck_every = absl::Seconds(1));

  // The identity whose token is `token`; nullopt if none. Every configured token is compared,
  // each in constant time.
  std::optional<std::string> Identify(absl::string_view token);

  // Looks at the files now (what Identify does every `recheck_every`).
  void ReloadChangedFiles();

 private:
  struct Entry {
    std::string app;
    std::unique_ptr<tls::TokenFile> file;
  };

  explicit TokenStore(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  const std::vector<Entry> entries_;
};

}  // namespace callmesh::sidecar::security

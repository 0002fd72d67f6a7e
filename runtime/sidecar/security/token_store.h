// Bearer tokens of the Sidecar API (security.tokens): which identity a presented token
// authenticates. Tokens are read from files named in the config (surrounding whitespace
// ignored) and compared in constant time; a file that changes is read again without a restart
// (rotation: replace the file), looked at no more often than every `recheck_every` on the
// injected Clock, so a burst of calls costs no system calls.
//
//   auto tokens = TokenStore::Load(config.security().tokens(), Clock::Real());
//   if (!tokens.ok()) return tokens.status();  // "security.tokens[0].file /x: cannot read: ..."
//   std::optional<std::string> app = (*tokens)->Identify(presented);
//
// A file that cannot be read, or is empty, when it is re-read keeps its previous token (logged
// once per change): a rotation half-done does not lock every app out. Thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "callmesh/v1/config.pb.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "runtime/common/clock.h"

namespace callmesh::sidecar::security {

// True if `a` equals `b`; the time taken depends on their lengths only, not on where they differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class TokenStore {
 public:
  // Reads every token file. INVALID_ARGUMENT "security.tokens[i].file <path>: cannot read: <why>"
  // or "...: is empty". `clock` (not owned) must outlive the store.
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
    std::string file;
    std::string token;
    // What the file looked like when it was read: a change in any of these is a rotation.
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool warned = false;
  };

  TokenStore(std::vector<Entry> entries, Clock* clock, absl::Duration recheck_every);

  Clock* const clock_;
  const absl::Duration recheck_every_;
  absl::Mutex mu_;
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
};

}  // namespace callmesh::sidecar::security

// A bearer token kept in a file and re-read when the file changes (rotation without a restart):
// the client side of `authorization: Bearer <token>`.
//
//   absl::StatusOr<std::unique_ptr<TokenFile>> token = TokenFile::Open("/run/secrets/billing");
//   std::string value = (*token)->Current();   // surrounding whitespace stripped
//
// Current() checks the file's inode, modification time and size (a stat) at most every
// `recheck_every` (kTokenRecheckInterval unless given) and re-reads it when any changed. If a
// re-read fails or finds an empty file, the last good token is kept (and the failure logged once),
// so a rotation that writes the file in two steps never leaves calls without a token. Used by
// clients (the SDK, the CLI) and by the sidecar's TokenStore
// (runtime/sidecar/security/token_store.h). Thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/common/clock.h"

namespace callmesh::tls {

inline constexpr absl::Duration kTokenRecheckInterval = absl::Milliseconds(200);

// The token in `path`, whitespace stripped. INVALID_ARGUMENT naming the file when it cannot be
// read or holds no token.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

class TokenFile {
 public:
  // Reads the file once; its errors are ReadTokenFile's. `clock` (not owned, must outlive the
  // TokenFile) paces the re-checks, one every `recheck_every`.
  static absl::StatusOr<std::unique_ptr<TokenFile>> Open(
      const std::string& path, Clock* clock = Clock::Real(),
      absl::Duration recheck_every = kTokenRecheckInterval);

  // The newest good token.
  std::string Current();

  // Looks at the file now (what Current() does every `recheck_every`).
  void Recheck();

  const std::string& path() const { return path_; }

 private:
  // What the file looked like when it was read: a change in any of these is a rotation.
  struct FileState {
    ino_t inode = 0;
    struct timespec mtime {};
    off_t size = 0;
    bool operator==(const FileState& other) const;
  };

  TokenFile(std::string path, Clock* clock, absl::Duration recheck_every, std::string token,
            FileState state);
  void RecheckLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  Clock* const clock_;
  const absl::Duration recheck_every_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  FileState state_ ABSL_GUARDED_BY(mu_);
  absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  bool warned_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace callmesh::tls

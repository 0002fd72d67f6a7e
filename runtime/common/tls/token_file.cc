#include "runtime/common/tls/token_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace callmesh::tls {

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read token file \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("token file \"", path, "\" is empty"));
  }
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token file \"", path, "\" holds a character that cannot be sent in a header"));
    }
  }
  return token;
}

namespace {

// Fills `st`; false if the file cannot be looked at.
bool StatFile(const std::string& path, struct stat* st) { return ::stat(path.c_str(), st) == 0; }

}  // namespace

bool TokenFile::FileState::operator==(const FileState& other) const {
  return inode == other.inode && mtime.tv_sec == other.mtime.tv_sec &&
         mtime.tv_nsec == other.mtime.tv_nsec && size == other.size;
}

absl::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(const std::string& path, Clock* clock,
                                                           absl::Duration recheck_every) {
  struct stat st {};
  const bool have_stat = StatFile(path, &st);
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) return token.status();
  FileState state;
  if (have_stat) state = {st.st_ino, st.st_mtim, st.st_size};
  return std::unique_ptr<TokenFile>(
      new TokenFile(path, clock, recheck_every, *std::move(token), state));
}

TokenFile::TokenFile(std::string path, Clock* clock, absl::Duration recheck_every,
                     std::string token, FileState state)
    : path_(std::move(path)),
      clock_(clock),
      recheck_every_(recheck_every),
      token_(std::move(token)),
      state_(state),
      next_check_(clock_->Now() + recheck_every) {}

std::string TokenFile::Current() {
  absl::MutexLock lock(&mu_);
  if (clock_->Now() >= next_check_) RecheckLocked();
  return token_;
}

void TokenFile::Recheck() {
  absl::MutexLock lock(&mu_);
  RecheckLocked();
}

void TokenFile::RecheckLocked() {
  next_check_ = clock_->Now() + recheck_every_;
  struct stat st {};
  const bool have_stat = StatFile(path_, &st);
  const FileState now{st.st_ino, st.st_mtim, st.st_size};
  if (have_stat && now == state_) return;
  absl::StatusOr<std::string> token = ReadTokenFile(path_);  // names a missing file
  if (!token.ok()) {
    if (!warned_) {
      spdlog::warn("{}; keeping the previous token", std::string(token.status().message()));
    }
    warned_ = true;
    return;
  }
  warned_ = false;
  state_ = now;
  if (*token != token_) spdlog::info("token reloaded from {}", path_);
  token_ = *std::move(token);
}

}  // namespace callmesh::tls

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

absl::StatusOr<std::unique_ptr<TokenFile>> TokenFile::Open(const std::string& path, Clock* clock) {
  struct stat st {};
  const bool have_stat = ::stat(path.c_str(), &st) == 0;
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) return token.status();
  return std::unique_ptr<TokenFile>(new TokenFile(path, clock, *std::move(token),
                                                  have_stat ? st.st_mtim : timespec{}, st.st_size));
}

TokenFile::TokenFile(std::string path, Clock* clock, std::string token, struct timespec mtime,
                     off_t size)
    : path_(std::move(path)),
      clock_(clock),
      token_(std::move(token)),
      mtime_(mtime),
      size_(size),
      next_check_(clock_->Now() + kTokenRecheckInterval) {}

std::string TokenFile::Current() {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  if (now < next_check_) return token_;
  next_check_ = now + kTokenRecheckInterval;
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) return token_;
  if (st.st_mtim.tv_sec == mtime_.tv_sec && st.st_mtim.tv_nsec == mtime_.tv_nsec &&
      st.st_size == size_) {
    return token_;
  }
  absl::StatusOr<std::string> token = ReadTokenFile(path_);
  if (!token.ok()) {
    if (!warned_)
      spdlog::warn("{}; keeping the previous token", std::string(token.status().message()));
    warned_ = true;
    return token_;
  }
  warned_ = false;
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  token_ = *std::move(token);
  return token_;
}

}  // namespace callmesh::tls

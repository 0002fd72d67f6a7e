#include "runtime/common/http/socket_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace callmesh::http {

absl::StatusOr<AddressList> Resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); error != 0) {
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(error)));
  }
  return AddressList(found, freeaddrinfo);
}

absl::Status AwaitReady(int fd, short events, absl::Time deadline) {
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("timed out");
    pollfd waiting{fd, events, 0};
    const int timeout_ms =
        deadline == absl::InfiniteFuture()
            ? -1
            : static_cast<int>(std::min<int64_t>(
                  absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), 1 << 30));
    const int ready = poll(&waiting, 1, timeout_ms);
    if (ready > 0) return absl::OkStatus();
    if (ready < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", SystemError(errno)));
    }
  }
}

absl::Status WriteAll(int fd, absl::string_view data, absl::Time deadline) {
  while (!data.empty()) {
    const ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent > 0) {
      data.remove_prefix(static_cast<size_t>(sent));
      continue;
    }
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (absl::Status ready = AwaitReady(fd, POLLOUT, deadline); !ready.ok()) return ready;
      continue;
    }
    if (sent < 0 && errno == EINTR) continue;
    return absl::UnavailableError(absl::StrCat("send: ", SystemError(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> ReadSome(int fd, size_t max, absl::Time deadline, std::string* out) {
  for (;;) {
    const size_t before = out->size();
    out->resize(before + max);
    const ssize_t got = recv(fd, out->data() + before, max, 0);
    out->resize(before + (got > 0 ? static_cast<size_t>(got) : 0));
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(absl::StrCat("recv: ", SystemError(errno)));
    }
    if (absl::Status ready = AwaitReady(fd, POLLIN, deadline); !ready.ok()) return ready;
  }
}

std::string SystemError(int error) {
  char buffer[128];
  // The GNU strerror_r returns the text (maybe not in `buffer`).
  return strerror_r(error, buffer, sizeof(buffer));
}

}  // namespace callmesh::http

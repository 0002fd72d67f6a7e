#include "runtime/common/http/http_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/common/http/http_syntax.h"
#include "runtime/common/http/socket_io.h"

namespace callmesh::http {
namespace {

// The largest reply read: far over any collector's answer, small enough to never hurt.
constexpr size_t kMaxReplyBytes = 16 * 1024 * 1024;

absl::StatusOr<int> Connect(const HttpCall& call, absl::Time deadline) {
  absl::StatusOr<AddressList> found = Resolve(call.host, call.port, /*passive=*/false);
  if (!found.ok()) return found.status();
  absl::Status last = absl::UnavailableError("no address");
  for (addrinfo* address = found->get(); address != nullptr; address = address->ai_next) {
    const int fd = socket(address->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last = absl::UnavailableError(absl::StrCat("socket: ", SystemError(errno)));
      continue;
    }
    if (connect(fd, address->ai_addr, address->ai_addrlen) == 0) return fd;
    if (errno == EINPROGRESS) {
      last = AwaitReady(fd, POLLOUT, deadline);
      int error = 0;
      socklen_t length = sizeof(error);
      if (last.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0) {
        return fd;
      }
      if (last.ok()) last = absl::UnavailableError(SystemError(error));
    } else {
      last = absl::UnavailableError(SystemError(errno));
    }
    close(fd);
    if (absl::IsDeadlineExceeded(last)) break;
  }
  return last;
}

// The body of a chunked reply; nullopt when the framing is broken or cut short.
std::optional<std::string> Dechunk(absl::string_view data) {
  std::string body;
  for (;;) {
    const size_t line_end = data.find("\r\n");
    if (line_end == absl::string_view::npos) return std::nullopt;
    absl::string_view size_text = data.substr(0, line_end);
    size_text = size_text.substr(0, size_text.find(';'));  // without chunk extensions
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size)) return std::nullopt;
    data.remove_prefix(line_end + 2);
    if (size == 0) return body;
    if (data.size() < size + 2) return std::nullopt;
    body.append(data.data(), size);
    data.remove_prefix(size + 2);
  }
}

absl::StatusOr<HttpReply> ParseReply(absl::string_view data) {
  const size_t head_end = data.find("\r\n\r\n");
  if (head_end == absl::string_view::npos) return absl::InternalError("the reply has no head");
  absl::StatusOr<MessageHead> head = ParseMessageHead(data.substr(0, head_end));
  if (!head.ok()) return absl::InternalError(head.status().message());
  const std::vector<absl::string_view> parts =
      absl::StrSplit(head->start_line, absl::MaxSplits(' ', 2));
  HttpReply reply;
  if (parts.size() < 2 || !absl::StartsWith(parts[0], "HTTP/1.") ||
      !absl::SimpleAtoi(parts[1], &reply.status) || reply.status < 100 || reply.status > 999) {
    return absl::InternalError(absl::StrCat("not an HTTP/1.x status line: ", head->start_line));
  }
  absl::string_view body = data.substr(head_end + 4);
  reply.headers = std::move(head->fields);
  if (auto it = reply.headers.find("transfer-encoding");
      it != reply.headers.end() && absl::AsciiStrToLower(it->second) == "chunked") {
    std::optional<std::string> dechunked = Dechunk(body);
    if (!dechunked.has_value()) return absl::InternalError("a chunked reply cut short");
    reply.body = *std::move(dechunked);
  } else if (auto length = reply.headers.find("content-length"); length != reply.headers.end()) {
    absl::StatusOr<size_t> size = ParseContentLength(length->second, kMaxReplyBytes);
    if (!size.ok()) return absl::InternalError(size.status().message());
    if (body.size() < *size) return absl::InternalError("a reply shorter than its Content-Length");
    reply.body = std::string(body.substr(0, *size));
  } else {
    reply.body = std::string(body);
  }
  return reply;
}

}  // namespace

absl::StatusOr<HttpReply> HttpExchange(const HttpCall& call) {
  const absl::Time deadline = absl::Now() + call.timeout;
  const std::string where = JoinHostPort(call.host, call.port);
  const auto failed = [&](const absl::Status& status) {
    return absl::Status(
        status.code(),
        absl::StrCat(call.method, " http://", where, call.path, ": ",
                     absl::IsDeadlineExceeded(status)
                         ? absl::StrCat("no reply within ", absl::FormatDuration(call.timeout))
                         : std::string(status.message())));
  };
  absl::StatusOr<int> fd = Connect(call, deadline);
  if (!fd.ok()) return failed(fd.status());
  absl::Cleanup close_fd = [fd = *fd] { close(fd); };
  std::string request = absl::StrCat(call.method, " ", call.path, " HTTP/1.1\r\nHost: ", where,
                                     "\r\nConnection: close\r\n");
  if (!call.body.empty() || call.method == "POST" || call.method == "PUT") {
    absl::StrAppend(&request, "Content-Length: ", call.body.size(), "\r\n");
  }
  if (!call.body.empty() && !call.content_type.empty()) {
    absl::StrAppend(&request, "Content-Type: ", call.content_type, "\r\n");
  }
  absl::StrAppend(&request, "\r\n", call.body);
  if (absl::Status sent = WriteAll(*fd, request, deadline); !sent.ok()) return failed(sent);
  std::string data;
  for (;;) {
    absl::StatusOr<size_t> got = ReadSome(*fd, 64 * 1024, deadline, &data);
    if (!got.ok()) return failed(got.status());
    if (*got == 0) break;
    if (data.size() > kMaxReplyBytes) {
      return failed(absl::InternalError(absl::StrCat("a reply over ", kMaxReplyBytes, " bytes")));
    }
  }
  absl::StatusOr<HttpReply> reply = ParseReply(data);
  if (!reply.ok()) return failed(reply.status());
  return reply;
}

}  // namespace callmesh::http

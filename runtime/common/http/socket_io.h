// Reads and writes on a non-blocking socket that give up at a deadline, shared by the HTTP
// server and client. A deadline of absl::InfiniteFuture() waits as long as it takes.
#pragma once

#include <netdb.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace callmesh::http {

// The addresses of `host` (an address or a name) and `port` for a TCP socket; `passive` for one
// to listen on. UNAVAILABLE "cannot resolve <host>: <reason>".
using AddressList = std::unique_ptr<addrinfo, void (*)(addrinfo*)>;
absl::StatusOr<AddressList> Resolve(const std::string& host, int port, bool passive);

// Waits until `fd` is readable (`events` POLLIN) or writable (POLLOUT), or DEADLINE_EXCEEDED.
absl::Status AwaitReady(int fd, short events, absl::Time deadline);

// Writes all of `data`. UNAVAILABLE when the peer is gone, DEADLINE_EXCEEDED at the deadline.
absl::Status WriteAll(int fd, absl::string_view data, absl::Time deadline);

// Appends what arrives (at most `max` bytes) to `out`; 0 at the end of the stream.
// UNAVAILABLE on a reset, DEADLINE_EXCEEDED at the deadline.
absl::StatusOr<size_t> ReadSome(int fd, size_t max, absl::Time deadline, std::string* out);

// strerror for `error` (errno), as one short phrase.
std::string SystemError(int error);

}  // namespace callmesh::http

#include "runtime/sidecar/cluster/nats_connection.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/common/tls/token_file.h"
#include "spdlog/spdlog.h"

namespace callmesh::sidecar::cluster {
namespace {

constexpr int64_t kReconnectWaitMs = 500;
constexpr int64_t kConnectTimeoutMs = 2000;
constexpr int64_t kJetStreamWaitMs = 1000;

}  // namespace

std::string NatsError(absl::string_view what, natsStatus status) {
  std::string message = absl::StrCat(what, ": ", natsStatus_GetText(status));
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && detail[0] != '\0' && last == status) {
    absl::StrAppend(&message, " (", detail, ")");
  }
  return message;
}

absl::StatusOr<std::unique_ptr<NatsConnection>> NatsConnection::Open(
    const v1::ClusterConfig& cluster) {
  std::unique_ptr<NatsConnection> self(new NatsConnection());
  auto fail = [](absl::string_view what, natsStatus s) {
    return absl::InvalidArgumentError(NatsError(what, s));
  };
  natsStatus s = natsOptions_Create(&self->options_);
  if (s != NATS_OK) return fail("cluster: NATS options", s);
  std::vector<const char*> servers;
  for (const std::string& server : cluster.nats_servers()) servers.push_back(server.c_str());
  s = natsOptions_SetServers(self->options_, servers.data(), static_cast<int>(servers.size()));
  if (s != NATS_OK) return fail("cluster.nats_servers", s);
  natsOptions_SetName(self->options_, absl::StrCat("callmeshd ", cluster.sidecar_id()).c_str());
  natsOptions_SetTimeout(self->options_, kConnectTimeoutMs);
  natsOptions_SetMaxReconnect(self->options_, -1);
  natsOptions_SetReconnectWait(self->options_, kReconnectWaitMs);
  natsOptions_SetDisconnectedCB(self->options_, &NatsConnection::OnDisconnected, self.get());
  natsOptions_SetReconnectedCB(self->options_, &NatsConnection::OnConnected, self.get());
  natsOptions_SetErrorHandler(self->options_, &NatsConnection::OnError, self.get());
  if (!cluster.nats_token_file().empty()) {
    absl::StatusOr<std::string> token = tls::ReadTokenFile(cluster.nats_token_file());
    if (!token.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster.nats_token_file: ", token.status().message()));
    }
    s = natsOptions_SetToken(self->options_, token->c_str());
    if (s != NATS_OK) return fail("cluster.nats_token_file", s);
  }
  if (!cluster.nats_user().empty()) {
    absl::StatusOr<std::string> password = tls::ReadTokenFile(cluster.nats_password_file());
    if (!password.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cluster.nats_password_file: ", password.status().message()));
    }
    s = natsOptions_SetUserInfo(self->options_, cluster.nats_user().c_str(), password->c_str());
    if (s != NATS_OK) return fail("cluster.nats_user", s);
  }
  const v1::TlsConfig& tls = cluster.nats_tls();
  if (!tls.ca_file().empty() || !tls.cert_file().empty()) {
    natsOptions_SetSecure(self->options_, true);
    if (!tls.ca_file().empty()) {
      s = natsOptions_LoadCATrustedCertificates(self->options_, tls.ca_file().c_str());
      if (s != NATS_OK) return fail("cluster.nats_tls.ca_file", s);
    }
    if (!tls.cert_file().empty()) {
      s = natsOptions_LoadCertificatesChain(self->options_, tls.cert_file().c_str(),
                                            tls.key_file().c_str());
      if (s != NATS_OK) return fail("cluster.nats_tls.cert_file", s);
    }
  }
  // One attempt first, to learn why it fails (the retrying client below only ever says "no server
  // available"): e.g. the server's "Authorization Violation" for a wrong token.
  s = natsConnection_Connect(&self->connection_, self->options_);
  if (s != NATS_OK) {
    {
      absl::MutexLock lock(&self->mu_);
      self->last_error_ = NatsError("connecting", s);
    }
    spdlog::warn("cluster: {} ({}); serving local calls and retrying",
                 NatsError("no NATS server to connect to yet", s),
                 absl::StrJoin(cluster.nats_servers(), ", "));
    natsOptions_SetRetryOnFailedConnect(self->options_, true, &NatsConnection::OnConnected,
                                        self.get());
    s = natsConnection_Connect(&self->connection_, self->options_);
  }
  if (s == NATS_OK) {
    self->NoteConnected(true);
  } else if (s != NATS_NOT_YET_CONNECTED) {
    return absl::UnavailableError(NatsError("cluster: connecting to NATS", s));
  }
  // JetStream requests (bucket lookups and puts) give up after 1 s instead of the client's 5 s: a
  // JetStream cluster still electing its leaders answers nothing, and every caller retries.
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = kJetStreamWaitMs;
  s = natsConnection_JetStream(&self->jetstream_, self->connection_, &js_options);
  if (s != NATS_OK) return fail("cluster: JetStream context", s);
  return self;
}

NatsConnection::~NatsConnection() {
  if (jetstream_ != nullptr) jsCtx_Destroy(jetstream_);
  if (connection_ != nullptr) {
    natsConnection_FlushTimeout(connection_, 1000);
    natsConnection_Close(connection_);
    natsConnection_Destroy(connection_);
  }
  if (options_ != nullptr) natsOptions_Destroy(options_);
}

bool NatsConnection::connected() const {
  return connection_ != nullptr && natsConnection_Status(connection_) == NATS_CONN_STATUS_CONNECTED;
}

std::string NatsConnection::state() const {
  if (connected()) {
    char url[256] = {};
    natsConnection_GetConnectedUrl(connection_, url, sizeof(url));
    return absl::StrCat("connected to ", url);
  }
  absl::MutexLock lock(&mu_);
  std::string state = absl::StrCat(
      "not connected since ", absl::FormatTime(absl::RFC3339_sec, since_, absl::UTCTimeZone()));
  const char* last = nullptr;
  if (connection_ != nullptr && natsConnection_GetLastError(connection_, &last) != NATS_OK &&
      last != nullptr && last[0] != '\0') {
    absl::StrAppend(&state, ": ", last);
  }
  // What the server said, if it refused us (the last error is then only "no server available").
  if (!last_error_.empty() && (last == nullptr || last_error_ != last)) {
    absl::StrAppend(&state, " (", last_error_, ")");
  }
  return state;
}

void NatsConnection::OnError(natsConnection* connection, natsSubscription*, natsStatus status,
                             void* self) {
  auto* nats = static_cast<NatsConnection*>(self);
  std::string error = natsStatus_GetText(status);
  const char* detail = nullptr;
  if (connection != nullptr && natsConnection_GetLastError(connection, &detail) != NATS_OK &&
      detail != nullptr && detail[0] != '\0') {
    error = detail;
  }
  absl::MutexLock lock(&nats->mu_);
  if (nats->last_error_ != error) spdlog::warn("cluster: NATS: {}", error);
  nats->last_error_ = std::move(error);
}

void NatsConnection::OnConnected(natsConnection*, void* self) {
  static_cast<NatsConnection*>(self)->NoteConnected(true);
}

void NatsConnection::OnDisconnected(natsConnection*, void* self) {
  static_cast<NatsConnection*>(self)->NoteConnected(false);
}

void NatsConnection::NoteConnected(bool connected) {
  absl::MutexLock lock(&mu_);
  if (connected_ == connected) return;
  connected_ = connected;
  since_ = absl::Now();
  if (connected) last_error_.clear();
  if (connected) {
    spdlog::info("cluster: connected to NATS");
  } else {
    spdlog::warn("cluster: lost the connection to NATS; local calls go on, reconnecting");
  }
}

}  // namespace callmesh::sidecar::cluster

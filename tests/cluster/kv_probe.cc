// kv_probe: one JetStream key-value operation through libnats, for tests that must talk to a NATS
// cluster from inside a network namespace (run it with `ip netns exec`).
//
//   kv_probe --servers=nats://10.213.0.1:4222,nats://10.213.0.2:4222 create B --replicas=3
//   kv_probe --servers=... put B KEY VALUE      prints the new revision
//   kv_probe --servers=... get B KEY            prints the value
//
// Exit code 0 on success; 1 with one line on stderr naming the operation and NATS's error when the
// operation fails; 2 with one line on stderr for bad usage.
#include <nats/nats.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace {

constexpr char kUsage[] =
    "usage: kv_probe --servers=URL[,URL...] (create BUCKET [--replicas=N] | put BUCKET KEY VALUE | "
    "get BUCKET KEY)";

int UsageError(const std::string& problem) {
  std::fprintf(stderr, "kv_probe: %s; %s\n", problem.c_str(), kUsage);
  return 2;
}

// The one-line failure of `what`, with libnats's own last error text when it has one.
int Failure(const std::string& what, natsStatus status) {
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  std::fprintf(stderr, "kv_probe: %s: %s%s%s\n", what.c_str(), natsStatus_GetText(status),
               detail != nullptr && *detail != '\0' ? ": " : "", detail != nullptr ? detail : "");
  return 1;
}

// Owns the libnats objects of one run; destroys them in reverse order.
struct Session {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* jetstream = nullptr;
  kvStore* store = nullptr;
  ~Session() {
    kvStore_Destroy(store);
    jsCtx_Destroy(jetstream);
    natsConnection_Destroy(connection);
    natsOptions_Destroy(options);
  }
};

int Run(const std::string& servers, const std::vector<std::string>& command, int replicas) {
  Session session;
  std::vector<std::string> urls = absl::StrSplit(servers, ',', absl::SkipEmpty());
  std::vector<const char*> url_pointers;
  for (const std::string& url : urls) url_pointers.push_back(url.c_str());
  natsStatus s = natsOptions_Create(&session.options);
  if (s == NATS_OK) {
    s = natsOptions_SetServers(session.options, url_pointers.data(),
                               static_cast<int>(url_pointers.size()));
  }
  if (s == NATS_OK) s = natsOptions_SetTimeout(session.options, 2000);
  if (s != NATS_OK) return Failure("options " + servers, s);
  s = natsConnection_Connect(&session.connection, session.options);
  if (s != NATS_OK) return Failure("connect to " + servers, s);
  s = natsConnection_JetStream(&session.jetstream, session.connection, nullptr);
  if (s != NATS_OK) return Failure("jetstream context", s);

  const std::string& verb = command[0];
  const std::string& bucket = command[1];
  if (verb == "create") {
    kvConfig config;
    kvConfig_Init(&config);
    config.Bucket = bucket.c_str();
    config.Replicas = replicas;
    s = js_CreateKeyValue(&session.store, session.jetstream, &config);
    if (s != NATS_OK) return Failure("create bucket " + bucket, s);
    std::printf("created %s replicas=%d\n", bucket.c_str(), replicas);
    return 0;
  }
  s = js_KeyValue(&session.store, session.jetstream, bucket.c_str());
  if (s != NATS_OK) return Failure("open bucket " + bucket, s);
  if (verb == "put") {
    uint64_t revision = 0;
    s = kvStore_PutString(&revision, session.store, command[2].c_str(), command[3].c_str());
    if (s != NATS_OK) return Failure("put " + bucket + "/" + command[2], s);
    std::printf("%llu\n", static_cast<unsigned long long>(revision));
    return 0;
  }
  kvEntry* entry = nullptr;
  s = kvStore_Get(&entry, session.store, command[2].c_str());
  if (s != NATS_OK) return Failure("get " + bucket + "/" + command[2], s);
  std::printf("%s\n", kvEntry_ValueString(entry));
  kvEntry_Destroy(entry);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string servers;
  int replicas = 1;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--servers=")) {
      servers = std::string(arg);
    } else if (absl::StartsWith(arg, "--replicas=")) {
      if (!absl::SimpleAtoi(arg.substr(11), &replicas) || replicas < 1 || replicas > 5) {
        return UsageError("--replicas must be a number from 1 to 5, got '" +
                          std::string(arg.substr(11)) + "'");
      }
    } else if (absl::StartsWith(arg, "--")) {
      return UsageError("unknown flag " + std::string(arg));
    } else {
      command.emplace_back(arg);
    }
  }
  if (servers.empty()) return UsageError("--servers is required");
  if (command.empty()) return UsageError("no command");
  const std::string& verb = command[0];
  const size_t expected = verb == "create" ? 2 : verb == "put" ? 4 : verb == "get" ? 3 : 0;
  if (expected == 0) return UsageError("unknown command '" + verb + "'");
  if (command.size() != expected) {
    return UsageError("'" + verb + "' takes " + std::to_string(expected - 1) + " argument(s)");
  }
  const int code = Run(servers, command, replicas);
  nats_Close();
  return code;
}

#include "tests/support/netns_topology.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/common/status_macros.h"

namespace callmesh::testing {
namespace {

// Every namespace of every topology starts with this, followed by the creating process's pid.
constexpr char kPrefix[] = "cmt";
constexpr char kIp[] = "/usr/sbin/ip";  // Debian's iproute2 (tools/ci/install_deps.sh)
constexpr char kBridge[] = "br0";
constexpr char kHostInterface[] = "eth0";
constexpr int kMaxHosts = 250;
// TCP retransmissions before a connection whose peer stopped answering fails (Linux default 15,
// about 15 minutes); 3 gives up after a few seconds (0.2 + 0.4 + 0.8 + 1.6 s at the minimum
// retransmission timeout), so an isolated host's connections break as they would on hosts tuned
// for fast failure detection.
constexpr int kTcpRetries = 3;

std::atomic<int> next_sequence{0};

std::string BridgePort(int host) { return absl::StrCat("h", host); }

// The pid in a namespace name made by this scheme ("cmt<pid>n..."), or -1 if it is not one.
pid_t CreatorPid(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return -1;
  const size_t digits = name.find_first_not_of("0123456789");
  if (digits == 0 || digits == absl::string_view::npos || name[digits] != 'n') return -1;
  int pid = 0;
  if (!absl::SimpleAtoi(name.substr(0, digits), &pid) || pid <= 0) return -1;
  return pid;
}

bool Alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

// Deletes namespaces left by earlier runs whose process has died (a test killed by a timeout or a
// crash never reached its destructor).
absl::Status DeleteLeftovers() {
  CALLMESH_ASSIGN_OR_RETURN(const std::string listing, RunIp({"netns", "list"}));
  for (absl::string_view line : absl::StrSplit(listing, '\n', absl::SkipEmpty())) {
    const std::string name(line.substr(0, line.find(' ')));  // "name (id: 3)"
    const pid_t pid = CreatorPid(name);
    if (pid < 0 || Alive(pid)) continue;
    // Servers the dead run started outlive it inside its namespaces; they go first, or they
    // would keep running (and the namespace with them) after its name is deleted.
    absl::StatusOr<std::string> pids = RunIp({"netns", "pids", name});
    if (pids.ok()) {
      for (absl::string_view text : absl::StrSplit(*pids, '\n', absl::SkipEmpty())) {
        int orphan = 0;
        if (absl::SimpleAtoi(text, &orphan) && orphan > 0) kill(orphan, SIGKILL);
      }
    }
    const absl::Status deleted = RunIp({"netns", "delete", name}).status();
    // Another run's Create may have deleted it a moment ago.
    if (!deleted.ok() && access(("/run/netns/" + name).c_str(), F_OK) == 0) return deleted;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RunIp(const std::vector<std::string>& args) {
  CALLMESH_ASSIGN_OR_RETURN(CommandResult result,
                            testing::RunCommand(kIp, args, {}, absl::Seconds(20)));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip ", absl::StrJoin(args, " "), " exited with ",
                                            result.exit_code, ": ",
                                            absl::StripAsciiWhitespace(result.err)));
  }
  return result.out;
}

absl::StatusOr<NetnsTopology> NetnsTopology::Create(int hosts) {
  if (hosts < 1 || hosts > kMaxHosts) {
    return absl::InvalidArgumentError(
        absl::StrCat("NetnsTopology needs 1 to ", kMaxHosts, " hosts, got ", hosts));
  }
  CALLMESH_RETURN_IF_ERROR(DeleteLeftovers());
  // Constructed first, so that a failure below deletes what was already made.
  NetnsTopology topology(absl::StrCat(kPrefix, getpid(), "n", next_sequence++), hosts);
  const std::string bridge_ns = topology.BridgeNamespace();
  CALLMESH_RETURN_IF_ERROR(topology.AddNamespace(bridge_ns));
  CALLMESH_RETURN_IF_ERROR(
      RunIp({"-n", bridge_ns, "link", "add", kBridge, "type", "bridge"}).status());
  CALLMESH_RETURN_IF_ERROR(RunIp({"-n", bridge_ns, "link", "set", kBridge, "up"}).status());
  for (int host = 1; host <= hosts; ++host) {
    CALLMESH_RETURN_IF_ERROR(topology.AddHost(host));
  }
  return topology;
}

absl::Status NetnsTopology::AddNamespace(const std::string& name) {
  CALLMESH_RETURN_IF_ERROR(RunIp({"netns", "add", name}).status());
  created_.push_back(name);
  return RunIp({"-n", name, "link", "set", "lo", "up"}).status();
}

absl::Status NetnsTopology::AddHost(int host) {
  const std::string ns = Namespace(host);
  const std::string bridge_ns = BridgeNamespace();
  const std::string port = BridgePort(host);
  CALLMESH_RETURN_IF_ERROR(AddNamespace(ns));
  CALLMESH_ASSIGN_OR_RETURN(
      CommandResult sysctl,
      RunCommand(host, "/bin/sh",
                 {"-c", absl::StrCat("echo ", kTcpRetries, " > /proc/sys/net/ipv4/tcp_retries2")}));
  if (sysctl.exit_code != 0) {
    return absl::InternalError(absl::StrCat("setting tcp_retries2 in ", ns,
                                            " failed: ", absl::StripAsciiWhitespace(sysctl.err)));
  }
  // Both ends are created directly in their namespaces: neither ever exists in the root one.
  CALLMESH_RETURN_IF_ERROR(RunIp({"link", "add", kHostInterface, "netns", ns, "type", "veth",
                                  "peer", "name", port, "netns", bridge_ns})
                               .status());
  CALLMESH_RETURN_IF_ERROR(
      RunIp({"-n", ns, "addr", "add", absl::StrCat(Address(host), "/24"), "dev", kHostInterface})
          .status());
  CALLMESH_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", kHostInterface, "up"}).status());
  CALLMESH_RETURN_IF_ERROR(
      RunIp({"-n", bridge_ns, "link", "set", port, "master", kBridge}).status());
  return RunIp({"-n", bridge_ns, "link", "set", port, "up"}).status();
}

NetnsTopology::NetnsTopology(NetnsTopology&& other) noexcept
    : prefix_(std::move(other.prefix_)),
      hosts_(other.hosts_),
      created_(std::exchange(other.created_, {})) {}

NetnsTopology& NetnsTopology::operator=(NetnsTopology&& other) noexcept {
  if (this != &other) {
    DeleteNamespaces();
    prefix_ = std::move(other.prefix_);
    hosts_ = other.hosts_;
    created_ = std::exchange(other.created_, {});
  }
  return *this;
}

NetnsTopology::~NetnsTopology() { DeleteNamespaces(); }

void NetnsTopology::DeleteNamespaces() {
  // Hosts first, the bridge last; a failure here cannot be reported, and Create of a later run
  // deletes whatever is left once this process is gone.
  for (auto name = created_.rbegin(); name != created_.rend(); ++name) {
    (void)RunIp({"netns", "delete", *name});
  }
  created_.clear();
}

absl::Status NetnsTopology::CheckHost(int host) const {
  if (host >= 1 && host <= hosts_) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("host ", host, " is not in this topology (hosts 1 to ", hosts_, ")"));
}

std::string NetnsTopology::Address(int host) const { return absl::StrCat("10.213.0.", host); }

std::string NetnsTopology::Namespace(int host) const { return absl::StrCat(prefix_, "-h", host); }

std::string NetnsTopology::BridgeNamespace() const { return prefix_ + "-br"; }

absl::StatusOr<Process> NetnsTopology::Start(int host, const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& label,
                                             const ProcessOptions& options) const {
  CALLMESH_RETURN_IF_ERROR(CheckHost(host));
  std::vector<std::string> command = {"netns", "exec", Namespace(host), binary};
  command.insert(command.end(), args.begin(), args.end());
  return Process::Start(kIp, command, label, options);
}

absl::StatusOr<CommandResult> NetnsTopology::RunCommand(int host, const std::string& binary,
                                                        const std::vector<std::string>& args,
                                                        const ProcessOptions& options,
                                                        absl::Duration timeout) const {
  CALLMESH_RETURN_IF_ERROR(CheckHost(host));
  std::vector<std::string> command = {"netns", "exec", Namespace(host), binary};
  command.insert(command.end(), args.begin(), args.end());
  return testing::RunCommand(kIp, command, options, timeout);
}

absl::Status NetnsTopology::Isolate(int host) {
  CALLMESH_RETURN_IF_ERROR(CheckHost(host));
  return RunIp({"-n", BridgeNamespace(), "link", "set", BridgePort(host), "down"}).status();
}

absl::Status NetnsTopology::Heal(int host) {
  CALLMESH_RETURN_IF_ERROR(CheckHost(host));
  return RunIp({"-n", BridgeNamespace(), "link", "set", BridgePort(host), "up"}).status();
}

}  // namespace callmesh::testing

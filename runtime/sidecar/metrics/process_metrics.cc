#include "runtime/sidecar/metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace callmesh::metrics {
namespace {

// Seconds since the epoch at which the machine booted (btime in /proc/stat).
std::optional<double> BootTime() {
  std::ifstream stat("/proc/stat");
  std::string key;
  double value = 0;
  while (stat >> key) {
    if (key == "btime" && stat >> value) return value;
    stat.ignore(1 << 20, '\n');
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  double count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor of the directory being read
}

}  // namespace

std::optional<ProcessStats> ReadProcessStats() {
  std::ifstream file("/proc/self/stat");
  std::string line;
  if (!std::getline(file, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::vector<std::string> fields;  // fields[0] is field 3 (state)
  std::string field;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats stats;
  // utime (14), stime (15), starttime (22), vsize (23), rss (24), numbered from 1.
  stats.cpu_seconds = (std::stod(fields[14 - 3]) + std::stod(fields[15 - 3])) / ticks;
  stats.virtual_bytes = std::stod(fields[23 - 3]);
  stats.resident_bytes = std::stod(fields[24 - 3]) * page;
  if (std::optional<double> boot = BootTime()) {
    stats.start_time_seconds = *boot + std::stod(fields[22 - 3]) / ticks;
  }
  return stats;
}

void AddProcessMetrics(Registry* registry) {
  using Type = Registry::Type;
  auto add = [registry](const char* name, const char* help, Type type, auto pick) {
    registry->AddComputed(name, help, type, {}, [pick](const EmitSample& emit) {
      if (std::optional<ProcessStats> stats = ReadProcessStats()) emit({}, pick(*stats));
    });
  };
  add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
      Type::kCounter, [](const ProcessStats& s) { return s.cpu_seconds; });
  add("process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge,
      [](const ProcessStats& s) { return s.resident_bytes; });
  add("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::kGauge,
      [](const ProcessStats& s) { return s.virtual_bytes; });
  add("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
      Type::kGauge, [](const ProcessStats& s) { return s.start_time_seconds; });
  registry->AddComputed("process_open_fds", "Number of open file descriptors.", Type::kGauge, {},
                        [](const EmitSample& emit) {
                          if (std::optional<double> fds = OpenFds()) emit({}, *fds);
                        });
}

}  // namespace callmesh::metrics

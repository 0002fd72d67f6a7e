#include "runtime/common/thread_name.h"

#include <pthread.h>

#include <string>

namespace callmesh {

// What the kernel keeps of a thread's name (TASK_COMM_LEN 16, with the terminating NUL).
constexpr size_t kMaxThreadNameBytes = 15;

void NameThisThread(absl::string_view name) {
  const std::string kept(name.substr(0, kMaxThreadNameBytes));
  pthread_setname_np(pthread_self(), kept.c_str());
}

}  // namespace callmesh

#include "runtime/common/thread_cache.h"

#include <cstddef>

// jemalloc's control interface, when jemalloc is linked in (callmeshd); null otherwise (the SDK,
// tests and tools run on glibc's malloc).
extern "C" int mallctl(const char* name, void* old_value, size_t* old_length, void* new_value,
                       size_t new_length) __attribute__((weak));

namespace callmesh {

void ReleaseThreadCache() {
  if (mallctl != nullptr) mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
}

}  // namespace callmesh

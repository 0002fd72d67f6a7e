#include "runtime/common/thread_name.h"

#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace callmesh {
namespace {

// The name the kernel shows for the calling thread.
std::string KernelName() {
  std::ifstream comm("/proc/thread-self/comm");
  std::string name;
  std::getline(comm, name);
  return name;
}

TEST(NameThisThread, TheKernelShowsTheNameAndCutsALongOneTo15Bytes) {
  std::string short_name, long_name;
  std::thread([&] {
    NameThisThread("journal-writer");
    short_name = KernelName();
    NameThisThread("a-name-longer-than-fifteen-bytes");
    long_name = KernelName();
  }).join();
  EXPECT_EQ(short_name, "journal-writer");
  EXPECT_EQ(long_name, "a-name-longer-t");
}

}  // namespace
}  // namespace callmesh

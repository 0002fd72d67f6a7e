// Lets every callmesh binary accept `--data-dir` as well as Abseil's `--data_dir`.
#pragma once

#include <string>
#include <vector>

namespace callmesh {

// Rewrites each "--some-flag[=value]" in argv[1..] to "--some_flag[=value]" (the value is left
// alone), stopping at a bare "--". The pointers stay valid while `storage` lives.
inline std::vector<char*> DashedFlagsToUnderscores(int argc, char** argv,
                                                   std::vector<std::string>* storage) {
  storage->assign(argv, argv + argc);
  for (size_t i = 1; i < storage->size(); ++i) {
    std::string& arg = (*storage)[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) != 0) continue;
    const size_t end = std::min(arg.find('='), arg.size());
    for (size_t k = 2; k < end; ++k) {
      if (arg[k] == '-') arg[k] = '_';
    }
  }
  std::vector<char*> out;
  for (std::string& arg : *storage) out.push_back(arg.data());
  return out;
}

}  // namespace callmesh

// protoc-gen-callmesh: the protoc plugin that writes typed callmesh clients and callbacks. See
// generator.h for what it generates and which inputs it refuses.
#include <cstring>
#include <iostream>

#include "google/protobuf/compiler/plugin.h"
#include "runtime/common/version.h"
#include "tools/protoc-gen-callmesh/generator.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::cout << callmesh::VersionLine("protoc-gen-callmesh") << "\n";
    return 0;
  }
  callmesh::stubs::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}

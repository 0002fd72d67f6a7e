// protoc-gen-callmesh: the protoc plugin that writes typed callmesh clients and callbacks. See
// generator.h for what it generates and which inputs it refuses.
#include "google/protobuf/compiler/plugin.h"
#include "tools/protoc-gen-callmesh/generator.h"

int main(int argc, char** argv) {
  callmesh::stubs::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}

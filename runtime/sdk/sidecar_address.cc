#include "runtime/sdk/sidecar_address.h"

#include <cstdlib>

namespace callmesh {

std::string DefaultSidecarAddress() {
  const char* from_environment = std::getenv(kSidecarAddressVariable);
  if (from_environment != nullptr && from_environment[0] != '\0') return from_environment;
  return kDefaultSidecarAddress;
}

}  // namespace callmesh

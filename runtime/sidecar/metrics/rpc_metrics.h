// gRPC server metrics with the names and labels of the gRPC ecosystem's Prometheus convention
// (go-grpc-prometheus), recorded by a server interceptor:
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method} (histogram)
// Methods of the services named at construction (e.g. callmesh.v1.Sidecar, grpc.health.v1.Health)
// get their own series; every other method — the transparent proxy's, whose names the callers
// choose — is counted under grpc_service="proxy", grpc_method="forward", so the label sets stay
// bounded whatever arrives.
//
//   RpcMetrics rpc_metrics(&registry, {"callmesh.v1.Sidecar", "grpc.health.v1.Health"});
//   builder.experimental().SetInterceptorCreators(rpc_metrics.InterceptorFactories());
//
// Thread-safe; must outlive the server it is installed in.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/sidecar/metrics/metrics_registry.h"

namespace callmesh::metrics {

class RpcMetrics {
 public:
  // The series of one method, resolved once.
  struct MethodSeries {
    Counter* started = nullptr;
    Histogram* handling = nullptr;
    CounterFamily* handled_family = nullptr;
    LabelValues labels;  // grpc_type, grpc_service, grpc_method
    // handled_total by code, resolved at first use.
    std::array<std::atomic<Counter*>, 17> handled{};
    void Handled(int code);
  };

  // `services`: full names of services whose methods are looked up in the generated descriptor
  // pool, plus methods given by path in `extra_methods` ("/grpc.health.v1.Health/Check").
  RpcMetrics(Registry* registry, const std::vector<std::string>& services,
             const std::vector<std::string>& extra_methods = {});

  // One factory to hand to ServerBuilder::experimental().SetInterceptorCreators.
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
  InterceptorFactories();

  // The series of `method_path` ("/pkg.Service/Method"): its own, or the proxy's.
  MethodSeries* Find(const std::string& method_path);

 private:
  MethodSeries* Add(const std::string& path, const std::string& type);

  CounterFamily* started_;
  CounterFamily* handled_;
  HistogramFamily* handling_;
  // Filled in the constructor, read-only afterwards (no lock needed).
  std::map<std::string, std::unique_ptr<MethodSeries>> methods_;
  std::unique_ptr<MethodSeries> proxy_;
};

}  // namespace callmesh::metrics

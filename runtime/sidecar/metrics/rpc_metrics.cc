#include "runtime/sidecar/metrics/rpc_metrics.h"

#include <chrono>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace callmesh::metrics {
namespace {

namespace exp = grpc::experimental;

std::string TypeOf(const google::protobuf::MethodDescriptor& method) {
  if (method.client_streaming() && method.server_streaming()) return "bidi_stream";
  if (method.client_streaming()) return "client_stream";
  if (method.server_streaming()) return "server_stream";
  return "unary";
}

// Records one RPC: started when created, handled and its duration when gRPC destroys it at the
// end of the RPC.
class RpcInterceptor : public exp::Interceptor {
 public:
  explicit RpcInterceptor(RpcMetrics::MethodSeries* series)
      : series_(series), started_(std::chrono::steady_clock::now()) {
    series_->started->Increment();
  }
  ~RpcInterceptor() override {
    series_->Handled(code_);
    series_->handling->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count());
  }

  void Intercept(exp::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(exp::InterceptionHookPoints::PRE_SEND_STATUS)) {
      code_ = static_cast<int>(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  RpcMetrics::MethodSeries* const series_;
  const std::chrono::steady_clock::time_point started_;
  // An RPC that ends without sending a status was cancelled.
  int code_ = static_cast<int>(grpc::StatusCode::CANCELLED);
};

class RpcInterceptorFactory : public exp::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(RpcMetrics* metrics) : metrics_(metrics) {}
  exp::Interceptor* CreateServerInterceptor(exp::ServerRpcInfo* info) override {
    return new RpcInterceptor(metrics_->Find(info->method()));
  }

 private:
  RpcMetrics* const metrics_;
};

}  // namespace

void RpcMetrics::MethodSeries::Handled(int code) {
  if (code < 0 || code >= 17) code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  Counter* counter = handled[code].load(std::memory_order_acquire);
  if (counter == nullptr) {
    LabelValues values = labels;
    values.push_back(absl::StatusCodeToString(static_cast<absl::StatusCode>(code)));
    counter = handled_family->With(values);
    handled[code].store(counter, std::memory_order_release);
  }
  counter->Increment();
}

RpcMetrics::RpcMetrics(Registry* registry, const std::vector<std::string>& services,
                       const std::vector<std::string>& extra_methods) {
  const std::vector<std::string> labels = {"grpc_type", "grpc_service", "grpc_method"};
  started_ = registry->AddCounter("grpc_server_started_total",
                                  "Total number of RPCs started on the server.", labels);
  handled_ = registry->AddCounter(
      "grpc_server_handled_total",
      "Total number of RPCs completed on the server, regardless of success or failure.",
      {"grpc_type", "grpc_service", "grpc_method", "grpc_code"});
  handling_ = registry->AddHistogram(
      "grpc_server_handling_seconds",
      "Histogram of response latency (seconds) of gRPC that had been application-level handled "
      "by the server.",
      labels, LatencyBuckets());
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor& method = *service->method(i);
      Add(absl::StrCat("/", service->full_name(), "/", method.name()), TypeOf(method));
    }
  }
  for (const std::string& path : extra_methods) Add(path, "unary");
  proxy_ = std::make_unique<MethodSeries>();
  proxy_->labels = {"unary", "proxy", "forward"};
  proxy_->started = started_->With(proxy_->labels);
  proxy_->handling = handling_->With(proxy_->labels);
  proxy_->handled_family = handled_;
}

RpcMetrics::MethodSeries* RpcMetrics::Add(const std::string& path, const std::string& type) {
  const size_t slash = path.rfind('/');
  if (path.empty() || path[0] != '/' || slash == 0 || slash == std::string::npos) return nullptr;
  auto series = std::make_unique<MethodSeries>();
  series->labels = {type, path.substr(1, slash - 1), path.substr(slash + 1)};
  series->started = started_->With(series->labels);
  series->handling = handling_->With(series->labels);
  series->handled_family = handled_;
  MethodSeries* added = series.get();
  methods_[path] = std::move(series);
  return added;
}

RpcMetrics::MethodSeries* RpcMetrics::Find(const std::string& method_path) {
  auto it = methods_.find(method_path);
  return it != methods_.end() ? it->second.get() : proxy_.get();
}

std::vector<std::unique_ptr<exp::ServerInterceptorFactoryInterface>>
RpcMetrics::InterceptorFactories() {
  std::vector<std::unique_ptr<exp::ServerInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<RpcInterceptorFactory>(this));
  return factories;
}

}  // namespace callmesh::metrics

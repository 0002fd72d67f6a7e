#include "runtime/sidecar/server/malformed_requests.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace callmesh::sidecar {
namespace {

namespace exp = grpc::experimental;

class MalformedRequestInterceptor : public exp::Interceptor {
 public:
  explicit MalformedRequestInterceptor(const std::string* request_type)
      : request_type_(request_type) {}

  void Intercept(exp::InterceptorBatchMethods* methods) override {
    // gRPC hands interceptors the request it deserialized, or nothing when that failed.
    if (methods->QueryInterceptionHookPoint(exp::InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ &&
        methods->QueryInterceptionHookPoint(exp::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("the request is not a valid ", *request_type_,
                                      " message (its bytes do not parse)")));
      }
    }
    methods->Proceed();
  }

 private:
  const std::string* const request_type_;
  bool unparsed_ = false;
};

class MalformedRequestFactory : public exp::ServerInterceptorFactoryInterface {
 public:
  explicit MalformedRequestFactory(const std::string& service) {
    const google::protobuf::ServiceDescriptor* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    if (descriptor == nullptr) return;
    for (int i = 0; i < descriptor->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* method = descriptor->method(i);
      request_types_[absl::StrCat("/", service, "/", method->name())] =
          method->input_type()->full_name();
    }
  }

  exp::Interceptor* CreateServerInterceptor(exp::ServerRpcInfo* info) override {
    auto it = request_types_.find(info->method());
    return it == request_types_.end() ? nullptr : new MalformedRequestInterceptor(&it->second);
  }

 private:
  // "/package.Service/Method" -> full name of its request message.
  std::map<std::string, std::string, std::less<>> request_types_;
};

}  // namespace

std::unique_ptr<exp::ServerInterceptorFactoryInterface> MalformedRequestInterceptorFactory(
    const std::string& service) {
  return std::make_unique<MalformedRequestFactory>(service);
}

}  // namespace callmesh::sidecar

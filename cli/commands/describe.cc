// `callmesh describe SERVICE [METHOD|MESSAGE]`: the protobuf definitions a mesh service serves, as
// grpcurl's `describe` prints them, read by server reflection from one of its instances (or from
// --protoset).
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands/commands.h"
#include "runtime/common/names.h"

namespace callmesh::cli {
namespace {

// One described symbol: what it is, its full name and its definition in .proto syntax.
struct Definition {
  std::string kind;
  std::string name;
  std::string text;
};

// A method with the request and reply types it uses, so that one command shows what to send.
std::vector<Definition> DescribeMethod(const google::protobuf::MethodDescriptor& method) {
  return {
      {"method", MethodName(method), method.DebugString()},
      {"message", method.input_type()->full_name(), method.input_type()->DebugString()},
      {"message", method.output_type()->full_name(), method.output_type()->DebugString()},
  };
}

absl::StatusOr<std::vector<Definition>> DescribeSymbol(DescriptorSource& source,
                                                       const std::string& service,
                                                       const std::string& symbol) {
  // A message type is named in full ("pkg.Message"); anything with a '/' or no match is a method.
  if (!absl::StrContains(symbol, '/')) {
    absl::StatusOr<const google::protobuf::Descriptor*> message = source.FindMessageType(symbol);
    if (message.ok()) {
      return std::vector<Definition>{
          {"message", (*message)->full_name(), (*message)->DebugString()}};
    }
    if (message.status().code() != absl::StatusCode::kNotFound) return message.status();
  }
  absl::StatusOr<const google::protobuf::MethodDescriptor*> method =
      ResolveMethod(source, symbol, service);
  if (!method.ok()) {
    return AsInputError(absl::Status(method.status().code(),
                                     absl::StrCat(method.status().message(), " (nor is ", symbol,
                                                  " a message type of ", service, ")")));
  }
  return DescribeMethod(**method);
}

absl::Status RunDescribe(CliContext& context, const ParsedArgs& args) {
  if (args.positionals.empty() || args.positionals.size() > 2) {
    return InputError(absl::StrCat("describe needs SERVICE and at most one METHOD or MESSAGE, got ",
                                   args.positionals.size(),
                                   " argument(s) (example: callmesh describe greeter SayHello)"));
  }
  const std::string& service = args.positionals[0];
  if (absl::Status s = ValidateServiceName(service, "SERVICE"); !s.ok()) return AsInputError(s);
  absl::StatusOr<DescriptorSource*> source = context.Descriptors(service);
  if (!source.ok()) return source.status();

  std::vector<Definition> definitions;
  if (args.positionals.size() == 2) {
    absl::StatusOr<std::vector<Definition>> found =
        DescribeSymbol(**source, service, args.positionals[1]);
    if (!found.ok()) return found.status();
    definitions = *std::move(found);
  } else {
    absl::StatusOr<std::vector<std::string>> names = (*source)->ListServices();
    if (!names.ok()) return names.status();
    for (const std::string& name : *names) {
      absl::StatusOr<const google::protobuf::ServiceDescriptor*> grpc_service =
          (*source)->FindService(name);
      if (!grpc_service.ok()) return grpc_service.status();
      definitions.push_back({"service", name, (*grpc_service)->DebugString()});
    }
  }

  if (context.options().output == OutputFormat::kJson) {
    JsonValue list = JsonValue::Array();
    for (const Definition& definition : definitions) {
      JsonValue item = JsonValue::Object();
      item.Set("kind", JsonValue::String(definition.kind));
      item.Set("name", JsonValue::String(definition.name));
      item.Set("definition", JsonValue::String(definition.text));
      list.Append(std::move(item));
    }
    context.PrintJson(list);
    return absl::OkStatus();
  }
  if (context.options().output == OutputFormat::kNames) {
    for (const Definition& definition : definitions) context.out() << definition.name << "\n";
    return absl::OkStatus();
  }
  for (size_t i = 0; i < definitions.size(); ++i) {
    if (i > 0) context.out() << "\n";
    context.out() << definitions[i].name << " is a " << definitions[i].kind << ":\n"
                  << definitions[i].text;
  }
  return absl::OkStatus();
}

}  // namespace

Command DescribeCommand() {
  return Command{
      .path = "describe",
      .summary = "Show the .proto definitions of a mesh service, a method or a message",
      .arguments = "SERVICE [METHOD|MESSAGE]",
      .description =
          "Reads the descriptors of SERVICE (gRPC server reflection on one of its instances, or\n"
          "--protoset) and prints them in .proto syntax, as grpcurl's describe does. Without a\n"
          "second argument: every gRPC service SERVICE serves. With METHOD (SayHello or\n"
          "greeter.v1.Greeter/SayHello): the method with its request and reply messages. With a\n"
          "message's full name (greeter.v1.HelloRequest): that message. -o json prints a list of\n"
          "{kind, name, definition}; -o names the names only.",
      .flags = {},
      .examples =
          "  callmesh describe greeter\n"
          "  callmesh describe greeter SayHello\n"
          "  callmesh describe greeter greeter.v1.HelloRequest\n",
      .run = RunDescribe,
  };
}

}  // namespace callmesh::cli

// `callmesh services`: the sidecar's registry, with each instance's methods read by reflection.
#include <grpcpp/create_channel.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands/commands.h"
#include "cli/json/json_proto.h"
#include "cli/text/table.h"

namespace callmesh::cli {
namespace {

// "pkg.Service/Method" of every method a healthy instance serves (by reflection), else its
// registered gRPC service names.
std::vector<std::string> InstanceMethods(const v1::ServiceInstance& instance) {
  std::vector<std::string> methods;
  if (instance.healthy()) {
    std::unique_ptr<DescriptorSource> source = NewReflectionSource(
        grpc::CreateChannel(instance.address(), grpc::InsecureChannelCredentials()),
        absl::Seconds(3));
    absl::StatusOr<std::vector<std::string>> services = source->ListServices();
    if (services.ok()) {
      for (const std::string& name : *services) {
        absl::StatusOr<const google::protobuf::ServiceDescriptor*> service =
            source->FindService(name);
        if (!service.ok()) {
          methods.push_back(name + "/*");
          continue;
        }
        for (int i = 0; i < (*service)->method_count(); ++i) {
          methods.push_back(MethodName(*(*service)->method(i)));
        }
      }
      return methods;
    }
  }
  for (const std::string& name : instance.grpc_services()) methods.push_back(name + "/*");
  return methods;
}

// ": <why>, since <time>, removed at <time>" for an unhealthy instance (the parts it has).
std::string UnhealthyDetail(const v1::ServiceInstance& instance) {
  std::vector<std::string> parts;
  if (!instance.health_detail().empty()) parts.push_back(instance.health_detail());
  if (const std::string since = FormatTimestamp(instance.unhealthy_since()); !since.empty()) {
    parts.push_back(absl::StrCat("since ", since));
  }
  if (const std::string remove_at = FormatTimestamp(instance.remove_at()); !remove_at.empty()) {
    parts.push_back(absl::StrCat("removed at ", remove_at));
  }
  return parts.empty() ? "" : absl::StrCat(": ", absl::StrJoin(parts, ", "));
}

absl::Status RunServices(CliContext& context, const ParsedArgs& args) {
  if (!args.positionals.empty()) {
    return InputError(
        absl::StrCat("services takes no arguments, got \"", args.positionals[0], "\""));
  }
  absl::StatusOr<const v1::ListServicesResponse*> registry = context.Services();
  if (!registry.ok()) return registry.status();
  if (context.options().output == OutputFormat::kNames) {
    for (const v1::ServiceInfo& service : (*registry)->services()) {
      context.out() << service.name() << "\n";
    }
    return absl::OkStatus();
  }
  const bool with_methods = !args.Has("no-methods");
  if (context.options().output == OutputFormat::kJson) {
    JsonValue list = JsonValue::Array();
    for (const v1::ServiceInfo& service : (*registry)->services()) {
      absl::StatusOr<JsonValue> json = MessageToJson(service);
      if (!json.ok()) return json.status();
      JsonValue* instances = json->Find("instances");
      for (int i = 0; instances != nullptr && i < service.instances_size(); ++i) {
        if (!with_methods) break;
        JsonValue methods = JsonValue::Array();
        for (const std::string& m : InstanceMethods(service.instances(i))) {
          methods.Append(JsonValue::String(m));
        }
        instances->elements()[i].Set("methods", std::move(methods));
      }
      list.Append(*std::move(json));
    }
    context.PrintJson(list);
    return absl::OkStatus();
  }
  // Cluster mode: every instance has a host (its sidecar's id); a HOST column then says where.
  bool clustered = false;
  for (const v1::ServiceInfo& service : (*registry)->services()) {
    for (const v1::ServiceInstance& instance : service.instances()) {
      clustered = clustered || !instance.host().empty();
    }
  }
  std::vector<std::string> columns = {"SERVICE", "ADDRESS", "HEALTH", "METHODS"};
  if (clustered) columns.insert(columns.begin() + 1, "HOST");
  Table table(columns);
  const auto add_row = [&](std::vector<std::string> row, const std::string& host) {
    if (clustered) row.insert(row.begin() + 1, host.empty() ? "-" : host);
    table.AddRow(std::move(row));
  };
  for (const v1::ServiceInfo& service : (*registry)->services()) {
    if (service.instances().empty()) add_row({service.name(), "-", "no instances", ""}, "");
    for (const v1::ServiceInstance& instance : service.instances()) {
      std::string health = instance.healthy() ? "healthy" : "unhealthy";
      if (instance.static_()) health += " (static)";
      if (!instance.via().empty()) health += absl::StrCat(" (via ", instance.via(), ")");
      if (!instance.healthy()) health += UnhealthyDetail(instance);
      add_row({service.name(), instance.address(), health,
               with_methods ? absl::StrJoin(InstanceMethods(instance), ",") : ""},
              instance.host());
    }
  }
  context.out() << table.Render();
  return absl::OkStatus();
}

}  // namespace

Command ServicesCommand() {
  return Command{
      .path = "services",
      .summary = "List registered services, their instances, health and methods",
      .arguments = "",
      .description =
          "Shows the sidecar's registry. Methods are read by gRPC server reflection from each\n"
          "healthy instance. -o names prints only the service names (used by the bash\n"
          "completion).",
      .flags = {{.name = "no-methods", .help = "do not ask instances for their methods"}},
      .examples =
          "  callmesh services\n"
          "  callmesh services -o json\n"
          "  callmesh services -o names\n",
      .run = RunServices,
  };
}

}  // namespace callmesh::cli

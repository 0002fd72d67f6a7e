#include "tools/protoc-gen-callmesh/generator.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/compiler/cpp/names.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/printer.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace google::protobuf::compiler::cpp {
// Exported by libprotoc (declared in cpp/helpers.h, which pulls in internal headers): `name` with
// "_" appended if it is a C++ keyword, as protobuf's C++ generator names things.
std::string ResolveKeyword(const std::string& name);
}  // namespace google::protobuf::compiler::cpp

namespace callmesh::stubs {
namespace {

namespace pb = ::google::protobuf;
using pb::Descriptor;
using pb::FileDescriptor;
using pb::MethodDescriptor;
using pb::ServiceDescriptor;
using pb::io::Printer;

bool IsKeyword(const std::string& name) { return pb::compiler::cpp::ResolveKeyword(name) != name; }

struct Options {
  bool skip_streaming = false;
  std::string sdk_include_dir = "runtime/sdk";
};

bool ParseOptions(const std::string& parameter, Options* options, std::string* error) {
  for (absl::string_view item : absl::StrSplit(parameter, ',', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    const std::string key(absl::StripAsciiWhitespace(kv.first));
    const std::string value(absl::StripAsciiWhitespace(kv.second));
    if (key == "skip_streaming" && value.empty()) {
      options->skip_streaming = true;
    } else if (key == "sdk_include_dir" && !value.empty()) {
      options->sdk_include_dir = std::string(absl::StripSuffix(value, "/"));
    } else {
      *error = absl::StrCat("protoc-gen-callmesh: unknown parameter '", item,
                            "' (known: skip_streaming, sdk_include_dir=DIR)");
      return false;
    }
  }
  return true;
}

// protobuf's C++ class name of a message: nested names joined with "_", keywords escaped.
std::string ClassName(const Descriptor* message) {
  std::string name = message->containing_type() != nullptr
                         ? ClassName(message->containing_type()) + "_" + message->name()
                         : message->name();
  return pb::compiler::cpp::ResolveKeyword(name);
}

std::string CppNamespace(const std::string& package) {
  return package.empty() ? "" : "::" + absl::StrReplaceAll(package, {{".", "::"}});
}

std::string QualifiedClassName(const Descriptor* message) {
  return CppNamespace(message->file()->package()) + "::" + ClassName(message);
}

std::string MethodPath(const MethodDescriptor* method) {
  return absl::StrCat(method->service()->full_name(), "/", method->name());
}

// The members generated for one method.
struct MethodNames {
  const MethodDescriptor* method;
  std::string call;      // Bar (keywords escaped)
  std::string async;     // BarAsync
  std::string cast;      // BarCast
  std::string await;     // AwaitBar
  std::string on;        // OnBar
  std::string on_error;  // OnBarError
};

// The members generated for one event of an event service (a service named `...Events`).
struct EventNames {
  const MethodDescriptor* method;
  std::string topic;           // "package.FooEvents.Bar"
  std::string topic_constant;  // kBarTopic
  std::string publish;         // PublishBar
  std::string on;              // OnBar
};

struct ServicePlan {
  const ServiceDescriptor* service;
  std::string client;     // FooClient
  std::string callbacks;  // FooCallbacks
  std::vector<MethodNames> methods;
  // Event services only: FooEventsPublisher, FooEventsSubscriber and their events.
  bool events = false;
  std::string publisher;
  std::string subscriber;
  std::vector<EventNames> event_list;
  std::vector<std::string> skipped;  // streaming methods left out
};

// Names a file defines at namespace scope, with what defines them.
std::map<std::string, std::string> TopLevelNames(const FileDescriptor* file) {
  std::map<std::string, std::string> names;
  for (int i = 0; i < file->message_type_count(); ++i) {
    names.emplace(ClassName(file->message_type(i)),
                  absl::StrCat("message ", file->message_type(i)->full_name()));
  }
  for (int i = 0; i < file->enum_type_count(); ++i) {
    const pb::EnumDescriptor* e = file->enum_type(i);
    names.emplace(e->name(), absl::StrCat("enum ", e->full_name()));
    for (int v = 0; v < e->value_count(); ++v) {
      names.emplace(e->value(v)->name(), absl::StrCat("enum value ", e->value(v)->full_name()));
    }
  }
  for (int i = 0; i < file->extension_count(); ++i) {
    names.emplace(file->extension(i)->name(),
                  absl::StrCat("extension ", file->extension(i)->full_name()));
  }
  for (int i = 0; i < file->service_count(); ++i) {
    names.emplace(file->service(i)->name(),
                  absl::StrCat("service ", file->service(i)->full_name()));
  }
  return names;
}

constexpr char kEventsSuffix[] = "Events";
constexpr size_t kMaxTopicLength = 128;

bool IsEventService(const ServiceDescriptor* service) {
  return service->name().size() > sizeof(kEventsSuffix) - 1 &&
         absl::EndsWith(service->name(), kEventsSuffix);
}

// Plans the publisher and subscriber of an event service: every method unary, returning
// google.protobuf.Empty, its topic a valid mesh name.
bool PlanEvents(const ServiceDescriptor* service, std::map<std::string, std::string>& taken,
                ServicePlan* plan, std::string* error) {
  plan->events = true;
  plan->publisher = service->name() + "Publisher";
  plan->subscriber = service->name() + "Subscriber";
  for (const std::string& cls : {plan->publisher, plan->subscriber}) {
    auto [it, fresh] = taken.emplace(
        cls, absl::StrCat("the generated class ", cls, " of service ", service->full_name()));
    if (!fresh) {
      *error = absl::StrCat("service ", service->full_name(), ": generated class ", cls,
                            " clashes with ", it->second, "; rename one of them");
      return false;
    }
  }
  std::map<std::string, std::string> publisher_members = {{plan->publisher, "the class name"}};
  std::map<std::string, std::string> subscriber_members = {
      {plan->subscriber, "the class name"},
      {"callmesh_service", "a member of " + plan->subscriber},
      {"callmesh_grpc_service", "a member of " + plan->subscriber},
      {"callmesh_topics", "a member of " + plan->subscriber},
      {"CallmeshReceiver", "a member of " + plan->subscriber},
      {"callmesh_receiver_", "a member of " + plan->subscriber}};
  for (int m = 0; m < service->method_count(); ++m) {
    const MethodDescriptor* method = service->method(m);
    if (method->client_streaming() || method->server_streaming()) {
      *error = absl::StrCat("method ", method->full_name(),
                            " is streaming; an event of an event service (a service whose name "
                            "ends in Events) is a unary method");
      return false;
    }
    if (method->output_type()->full_name() != "google.protobuf.Empty") {
      *error = absl::StrCat("method ", method->full_name(), " returns ",
                            method->output_type()->full_name(),
                            "; an event of an event service (a service whose name ends in Events) "
                            "returns google.protobuf.Empty");
      return false;
    }
    const std::string& name = method->name();
    EventNames names{method, absl::StrCat(service->full_name(), ".", name), "k" + name + "Topic",
                     "Publish" + name, "On" + name};
    if (names.topic.size() > kMaxTopicLength) {
      *error = absl::StrCat("method ", method->full_name(), ": its topic '", names.topic,
                            "' is longer than ", kMaxTopicLength, " characters (mesh name rules)");
      return false;
    }
    const std::string mine = absl::StrCat("the one generated for event ", name);
    for (const std::string* member : {&names.topic_constant, &names.publish}) {
      auto [it, fresh] = publisher_members.emplace(*member, mine);
      if (!fresh) {
        *error = absl::StrCat("method ", method->full_name(), ": generated member ",
                              plan->publisher, "::", *member, " clashes with ", it->second,
                              "; rename one of the methods");
        return false;
      }
    }
    for (const std::string* member : {&names.topic_constant, &names.on}) {
      auto [it, fresh] = subscriber_members.emplace(*member, mine);
      if (!fresh) {
        *error = absl::StrCat("method ", method->full_name(), ": generated member ",
                              plan->subscriber, "::", *member, " clashes with ", it->second,
                              "; rename one of the methods");
        return false;
      }
    }
    plan->event_list.push_back(std::move(names));
  }
  return true;
}

bool Plan(const FileDescriptor* file, const Options& options, std::vector<ServicePlan>* plans,
          std::string* error) {
  for (absl::string_view part : absl::StrSplit(file->package(), '.', absl::SkipEmpty())) {
    if (IsKeyword(std::string(part))) {
      *error = absl::StrCat("package '", file->package(), "' has the C++ keyword '", part,
                            "' as a component; choose another package name");
      return false;
    }
  }
  std::map<std::string, std::string> taken = TopLevelNames(file);
  for (int s = 0; s < file->service_count(); ++s) {
    const ServiceDescriptor* service = file->service(s);
    ServicePlan plan;
    plan.service = service;
    if (IsEventService(service)) {
      if (!PlanEvents(service, taken, &plan, error)) return false;
      plans->push_back(std::move(plan));
      continue;
    }
    plan.client = service->name() + "Client";
    plan.callbacks = service->name() + "Callbacks";
    for (const std::string& cls : {plan.client, plan.callbacks}) {
      auto [it, fresh] = taken.emplace(
          cls, absl::StrCat("the generated class ", cls, " of service ", service->full_name()));
      if (!fresh) {
        *error = absl::StrCat("service ", service->full_name(), ": generated class ", cls,
                              " clashes with ", it->second, "; rename one of them");
        return false;
      }
    }
    // Members each class defines besides the generated methods.
    std::map<std::string, std::string> client_members = {
        {plan.client, "the class name"}, {"kGrpcService", "a member of " + plan.client}};
    std::map<std::string, std::string> callback_members = {
        {plan.callbacks, "the class name"},
        {"callmesh_grpc_service", "a member of " + plan.callbacks},
        {"HandleCompletion", "a member of " + plan.callbacks}};
    for (int m = 0; m < service->method_count(); ++m) {
      const MethodDescriptor* method = service->method(m);
      if (method->client_streaming() || method->server_streaming()) {
        const char* kind =
            method->client_streaming() && method->server_streaming()
                ? "bidirectional-streaming"
                : (method->client_streaming() ? "client-streaming" : "server-streaming");
        if (options.skip_streaming) {
          plan.skipped.push_back(absl::StrCat(method->name(), " (", kind, ")"));
          continue;
        }
        *error = absl::StrCat("method ", method->full_name(), " is ", kind,
                              "; callmesh stubs are unary only (the sidecar forwards unary calls). "
                              "Pass the parameter skip_streaming to leave it out.");
        return false;
      }
      const std::string& name = method->name();
      MethodNames names{method,
                        pb::compiler::cpp::ResolveKeyword(name),
                        name + "Async",
                        name + "Cast",
                        "Await" + name,
                        "On" + name,
                        "On" + name + "Error"};
      const std::string mine = absl::StrCat("the one generated for method ", name);
      for (const std::string* member : {&names.call, &names.async, &names.cast, &names.await}) {
        auto [it, fresh] = client_members.emplace(*member, mine);
        if (!fresh) {
          *error = absl::StrCat("method ", method->full_name(), ": generated member ", plan.client,
                                "::", *member, " clashes with ", it->second,
                                "; rename one of the methods");
          return false;
        }
      }
      for (const std::string* member : {&names.on, &names.on_error}) {
        auto [it, fresh] = callback_members.emplace(*member, mine);
        if (!fresh) {
          *error = absl::StrCat("method ", method->full_name(), ": generated member ",
                                plan.callbacks, "::", *member, " clashes with ", it->second,
                                "; rename one of the methods");
          return false;
        }
      }
      plan.methods.push_back(std::move(names));
    }
    plans->push_back(std::move(plan));
  }
  return true;
}

// The comment protoc kept for `descriptor`, as "// " lines at `indent`.
template <typename D>
std::string Comment(const D* descriptor, const std::string& indent) {
  pb::SourceLocation location;
  if (!descriptor->GetSourceLocation(&location)) return "";
  std::string text(absl::StripTrailingAsciiWhitespace(location.leading_comments));
  if (text.empty()) return "";
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    out +=
        indent + std::string(absl::StripTrailingAsciiWhitespace(absl::StrCat("//", line))) + "\n";
  }
  return out;
}

std::map<std::string, std::string> Vars(const ServicePlan& plan, const MethodNames& m) {
  return {{"client", plan.client},
          {"callbacks", plan.callbacks},
          {"Method", m.method->name()},
          {"call", m.call},
          {"async", m.async},
          {"cast", m.cast},
          {"await", m.await},
          {"on", m.on},
          {"on_error", m.on_error},
          {"path", MethodPath(m.method)},
          {"Request", QualifiedClassName(m.method->input_type())},
          {"Reply", QualifiedClassName(m.method->output_type())}};
}

bool HasEvents(const std::vector<ServicePlan>& plans) {
  for (const ServicePlan& plan : plans) {
    if (plan.events) return true;
  }
  return false;
}

std::map<std::string, std::string> EventVars(const ServicePlan& plan, const EventNames& e) {
  return {{"publisher", plan.publisher},
          {"subscriber", plan.subscriber},
          {"grpc_class", plan.service->name()},
          {"Method", e.method->name()},
          {"topic", e.topic},
          {"topic_constant", e.topic_constant},
          {"publish", e.publish},
          {"on", e.on},
          {"path", MethodPath(e.method)},
          {"Event", QualifiedClassName(e.method->input_type())}};
}

// A blank line, then the .proto comment of `service` (if any) as the head of its class comment.
void PrintServiceComment(const google::protobuf::ServiceDescriptor& service, Printer& p) {
  p.Print("\n");
  const std::string comment = Comment(&service, "");
  p.PrintRaw(comment);
  if (!comment.empty()) p.Print("//\n");
}

void PrintEventsHeader(const ServicePlan& plan, Printer& p) {
  const std::string full = plan.service->full_name();
  PrintServiceComment(*plan.service, p);
  p.Print(
      "// Publishes the events of $full$ (an event service: each method is an event, published\n"
      "// to the topic \"$full$.<method>\"), through the local sidecar. Thread-safe; `mesh` is\n"
      "// not owned and must outlive the publisher. Events go out with the Mesh's source as the\n"
      "// publisher.\n"
      "//\n"
      "//   $publisher$ publisher(mesh);\n",
      "full", full, "publisher", plan.publisher);
  if (!plan.event_list.empty()) {
    p.Print(
        "//   absl::StatusOr<callmesh::v1::PublishResponse> published = "
        "publisher.$publish$(event);\n",
        "publish", plan.event_list.front().publish);
  }
  p.Print(
      "class $publisher$ {\n"
      " public:\n",
      "publisher", plan.publisher);
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e), "  static constexpr char $topic_constant$[] = \"$topic$\";\n");
  }
  p.Print(
      "\n"
      "  explicit $publisher$(::callmesh::Mesh& mesh);\n",
      "publisher", plan.publisher);
  for (const EventNames& e : plan.event_list) {
    p.Print("\n");
    p.PrintRaw(Comment(e.method, "  "));
    p.Print(
        EventVars(plan, e),
        "  // Publishes `event` to $topic_constant$; returns once it is durable: its event ID,\n"
        "  // sequence, and how many subscriptions it goes to (Mesh::Publish).\n"
        "  ::absl::StatusOr<::callmesh::v1::PublishResponse> $publish$(const $Event$& event,\n"
        "      const ::callmesh::PublishOptions& options = {});\n");
  }
  p.Print(
      "\n"
      " private:\n"
      "  ::callmesh::Mesh& mesh_;\n"
      "};\n"
      "\n"
      "// Receives the events of $full$: derive, implement every On<event>, and add it to a\n"
      "// ServiceHost with AddSubscriber, which serves it and subscribes the host's mesh name to\n"
      "// every topic of $full$. A handler's OK acknowledges the event; an error is retried by\n"
      "// the subscribing service's retry policy, then dead-lettered. Delivery is at least once\n"
      "// (see EventContext::attempt); handlers are called concurrently.\n"
      "class $subscriber$ : public ::callmesh::EventSubscriber {\n"
      " public:\n",
      "full", full, "subscriber", plan.subscriber, "grpc_class", plan.service->name());
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e), "  static constexpr char $topic_constant$[] = \"$topic$\";\n");
  }
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e),
            "\n"
            "  // An event published to $topic_constant$.\n"
            "  virtual ::absl::Status $on$(const ::callmesh::EventContext& context,\n"
            "      const $Event$& event) = 0;\n");
  }
  p.Print(
      "\n"
      "  ::grpc::Service* callmesh_service() final { return &callmesh_receiver_; }\n"
      "  const char* callmesh_grpc_service() const final { return \"$full$\"; }\n"
      "  std::vector<::callmesh::EventTopic> callmesh_topics() const final;\n"
      "\n"
      " private:\n"
      "  // The gRPC service $full$, handing each delivery to its On<event> (kept apart so that\n"
      "  // its method names do not hide the event types in classes that derive from this one).\n"
      "  class CallmeshReceiver final : public $grpc_class$::Service {\n"
      "   public:\n"
      "    explicit CallmeshReceiver($subscriber$* subscriber) : subscriber_(subscriber) {}\n",
      "full", full, "grpc_class", plan.service->name(), "subscriber", plan.subscriber);
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e),
            "    ::grpc::Status $Method$(::grpc::ServerContext* context, const $Event$* event,\n"
            "        ::google::protobuf::Empty* reply) final;\n");
  }
  p.Print(
      "\n"
      "   private:\n"
      "    $subscriber$* const subscriber_;\n"
      "  };\n"
      "  CallmeshReceiver callmesh_receiver_{this};\n"
      "};\n",
      "subscriber", plan.subscriber);
}

void PrintEventsSource(const ServicePlan& plan, Printer& p) {
  p.Print(
      "\n"
      "$publisher$::$publisher$(::callmesh::Mesh& mesh) : mesh_(mesh) {}\n",
      "publisher", plan.publisher);
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e),
            "\n"
            "::absl::StatusOr<::callmesh::v1::PublishResponse> $publisher$::$publish$(\n"
            "    const $Event$& event, const ::callmesh::PublishOptions& options) {\n"
            "  return mesh_.Publish($topic_constant$, event.SerializeAsString(), options);\n"
            "}\n");
  }
  p.Print(
      "\n"
      "std::vector<::callmesh::EventTopic> $subscriber$::callmesh_topics() const {\n"
      "  return {\n",
      "subscriber", plan.subscriber);
  for (const EventNames& e : plan.event_list) {
    p.Print(EventVars(plan, e), "      {$topic_constant$, \"$path$\"},\n");
  }
  p.Print("  };\n}\n");
  for (const EventNames& e : plan.event_list) {
    p.Print(
        EventVars(plan, e),
        "\n"
        "::grpc::Status $subscriber$::CallmeshReceiver::$Method$(\n"
        "    ::grpc::ServerContext* context, const $Event$* event, ::google::protobuf::Empty*) {\n"
        "  return ::callmesh::ToEventReply(\n"
        "      subscriber_->$on$(::callmesh::EventContext::From(*context), *event));\n"
        "}\n");
  }
}

void PrintHeader(const FileDescriptor* file, const Options& options,
                 const std::vector<ServicePlan>& plans, const std::string& base, Printer& p) {
  p.Print(
      "// Generated by protoc-gen-callmesh from $file$. DO NOT EDIT.\n"
      "// Typed callmesh clients and callbacks; see tools/protoc-gen-callmesh/generator.h.\n"
      "#pragma once\n"
      "\n"
      "#include <functional>\n"
      "#include <string>\n"
      "$vector$"
      "\n"
      "#include \"absl/status/status.h\"\n"
      "#include \"absl/status/statusor.h\"\n"
      "#include \"absl/time/time.h\"\n"
      "#include \"$base$.pb.h\"\n"
      "#include \"$sdk$/callback_router.h\"\n"
      "#include \"$sdk$/mesh.h\"\n",
      "file", file->name(), "base", base, "sdk", options.sdk_include_dir, "vector",
      HasEvents(plans) ? "#include <vector>\n" : "");
  if (HasEvents(plans)) {
    p.Print(
        "#include \"$base$.grpc.pb.h\"\n"
        "#include \"$sdk$/event_subscriber.h\"\n",
        "base", base, "sdk", options.sdk_include_dir);
  }
  const std::string ns = absl::StrReplaceAll(file->package(), {{".", "::"}});
  if (!ns.empty()) p.Print("\nnamespace $ns$ {\n", "ns", ns);
  for (const ServicePlan& plan : plans) {
    if (plan.events) {
      PrintEventsHeader(plan, p);
      continue;
    }
    const std::string full = plan.service->full_name();
    PrintServiceComment(*plan.service, p);
    p.Print(
        "// Typed mesh client of $full$: calls the mesh service that serves it, through the local\n"
        "// sidecar. Thread-safe; `mesh` is not owned and must outlive the client.\n"
        "//\n"
        "//   $client$ client(mesh, \"<mesh service name>\");\n",
        "full", full, "client", plan.client);
    if (!plan.methods.empty()) {
      const MethodNames& first = plan.methods.front();
      p.Print(
          "//   absl::StatusOr<$Reply$> reply = client.$call$(request);\n"
          "//   absl::StatusOr<callmesh::Cid> cid = client.$async$(request);\n"
          "//   absl::StatusOr<$Reply$> later = client.$await$(*cid, absl::Seconds(30));\n",
          "Reply", QualifiedClassName(first.method->output_type()), "call", first.call, "async",
          first.async, "await", first.await);
    }
    for (const std::string& skipped : plan.skipped) {
      p.Print("// Left out (skip_streaming): $m$.\n", "m", skipped);
    }
    p.Print(
        "class $client$ {\n"
        " public:\n"
        "  static constexpr char kGrpcService[] = \"$full$\";\n"
        "\n"
        "  // `service` is the mesh name of the target (what it registered with its sidecar).\n"
        "  $client$(::callmesh::Mesh& mesh, std::string service);\n",
        "client", plan.client, "full", full);
    for (const MethodNames& m : plan.methods) {
      std::map<std::string, std::string> vars = Vars(plan, m);
      p.Print("\n");
      p.PrintRaw(Comment(m.method, "  "));
      p.Print(vars,
              "  // $path$, synchronous: the reply or the target's status.\n"
              "  ::absl::StatusOr<$Reply$> $call$(const $Request$& request,\n"
              "      const ::callmesh::CallOptions& options = {});\n"
              "  // Asynchronous: the CID once the sidecar journaled the call.\n"
              "  ::absl::StatusOr<::callmesh::Cid> $async$(const $Request$& request,\n"
              "      const ::callmesh::AsyncOptions& options = {});\n"
              "  // Asynchronous; `done` gets the reply or the error once, on the Mesh's stream\n"
              "  // thread (or at once if already known).\n"
              "  ::absl::StatusOr<::callmesh::Cid> $async$(const $Request$& request,\n"
              "      const ::callmesh::AsyncOptions& options,\n"
              "      std::function<void(::absl::StatusOr<$Reply$>)> done);\n"
              "  // Fire-and-forget: no reply is kept or delivered.\n"
              "  ::absl::StatusOr<::callmesh::Cid> $cast$(const $Request$& request,\n"
              "      const ::callmesh::AsyncOptions& options = {});\n"
              "  // The reply of an earlier $async$, waiting up to `timeout`: the target's error,\n"
              "  // CANCELLED, DEADLINE_EXCEEDED (expired, or not done in time) otherwise.\n"
              "  ::absl::StatusOr<$Reply$> $await$(const ::callmesh::Cid& cid,\n"
              "      ::absl::Duration timeout);\n");
    }
    p.Print(
        "\n"
        " private:\n"
        "  ::callmesh::Mesh& mesh_;\n"
        "  const std::string service_;\n"
        "};\n"
        "\n"
        "// Receives the outcomes of async calls made to $full$, decoded per method. Derive,\n"
        "// override the methods you expect, and add it to the caller's ServiceHost with\n"
        "// AddCallbacks (served as `<host name>-async-callback`). Methods are called "
        "concurrently\n"
        "// and, since delivery is at least once, possibly twice for a CID (see\n"
        "// CallInfo::delivery_attempt). Defaults log the outcome.\n"
        "class $callbacks$ : public ::callmesh::CallbackHandler {\n"
        " public:\n"
        "  ~$callbacks$() override = default;\n",
        "full", full, "callbacks", plan.callbacks);
    for (const MethodNames& m : plan.methods) {
      p.Print(Vars(plan, m),
              "\n"
              "  // $path$ succeeded.\n"
              "  virtual void $on$(const ::callmesh::CallInfo& call, const $Reply$& reply);\n"
              "  // $path$ failed (target's status), was cancelled (CANCELLED) or expired\n"
              "  // (DEADLINE_EXCEEDED), or its reply did not parse (INTERNAL).\n"
              "  virtual void $on_error$(const ::callmesh::CallInfo& call,\n"
              "      const ::absl::Status& error);\n");
    }
    p.Print(
        "\n"
        "  const char* callmesh_grpc_service() const final { return \"$full$\"; }\n"
        "  ::absl::Status HandleCompletion(\n"
        "      const ::callmesh::v1::Completion& completion) final;\n"
        "};\n",
        "full", full);
  }
  if (!ns.empty()) p.Print("\n}  // namespace $ns$\n", "ns", ns);
}

void PrintSource(const FileDescriptor* file, const std::vector<ServicePlan>& plans,
                 const std::string& base, Printer& p) {
  p.Print(
      "// Generated by protoc-gen-callmesh from $file$. DO NOT EDIT.\n"
      "#include \"$base$.callmesh.h\"\n"
      "\n"
      "#include <utility>\n"
      "\n"
      "#include \"spdlog/spdlog.h\"\n",
      "file", file->name(), "base", base);
  const std::string ns = absl::StrReplaceAll(file->package(), {{".", "::"}});
  if (!ns.empty()) p.Print("\nnamespace $ns$ {\n", "ns", ns);
  for (const ServicePlan& plan : plans) {
    if (plan.events) {
      PrintEventsSource(plan, p);
      continue;
    }
    p.Print(
        "\n"
        "$client$::$client$(::callmesh::Mesh& mesh, std::string service)\n"
        "    : mesh_(mesh), service_(std::move(service)) {}\n",
        "client", plan.client);
    for (const MethodNames& m : plan.methods) {
      p.Print(
          Vars(plan, m),
          "\n"
          "::absl::StatusOr<$Reply$> $client$::$call$(const $Request$& request,\n"
          "    const ::callmesh::CallOptions& options) {\n"
          "  return ::callmesh::ParseReply<$Reply$>(\n"
          "      mesh_.Invoke(service_, \"$path$\", request.SerializeAsString(), options),\n"
          "      \"$path$\");\n"
          "}\n"
          "\n"
          "::absl::StatusOr<::callmesh::Cid> $client$::$async$(const $Request$& request,\n"
          "    const ::callmesh::AsyncOptions& options) {\n"
          "  return mesh_.InvokeAsync(service_, \"$path$\", request.SerializeAsString(),\n"
          "                           options);\n"
          "}\n"
          "\n"
          "::absl::StatusOr<::callmesh::Cid> $client$::$async$(const $Request$& request,\n"
          "    const ::callmesh::AsyncOptions& options,\n"
          "    std::function<void(::absl::StatusOr<$Reply$>)> done) {\n"
          "  ::absl::StatusOr<::callmesh::Cid> cid =\n"
          "      mesh_.InvokeAsync(service_, \"$path$\", request.SerializeAsString(), options);\n"
          "  if (!cid.ok()) return cid;\n"
          "  mesh_.OnComplete(*cid, [done = std::move(done)](\n"
          "      ::absl::StatusOr<::callmesh::v1::Completion> completion) {\n"
          "    done(::callmesh::TypedReply<$Reply$>(completion, \"$path$\"));\n"
          "  });\n"
          "  return cid;\n"
          "}\n"
          "\n"
          "::absl::StatusOr<::callmesh::Cid> $client$::$cast$(const $Request$& request,\n"
          "    const ::callmesh::AsyncOptions& options) {\n"
          "  return mesh_.Cast(service_, \"$path$\", request.SerializeAsString(), options);\n"
          "}\n"
          "\n"
          "::absl::StatusOr<$Reply$> $client$::$await$(const ::callmesh::Cid& cid,\n"
          "    ::absl::Duration timeout) {\n"
          "  return ::callmesh::TypedReply<$Reply$>(mesh_.Await(cid, timeout), \"$path$\");\n"
          "}\n");
    }
    for (const MethodNames& m : plan.methods) {
      p.Print(Vars(plan, m),
              "\n"
              "void $callbacks$::$on$(const ::callmesh::CallInfo& call, const $Reply$&) {\n"
              "  spdlog::info(\"[cid={}] $path$ succeeded ($callbacks$::$on$ not overridden)\",\n"
              "               call.cid);\n"
              "}\n"
              "\n"
              "void $callbacks$::$on_error$(const ::callmesh::CallInfo& call,\n"
              "    const ::absl::Status& error) {\n"
              "  spdlog::warn(\"[cid={}] $path$ failed: {} ($callbacks$::$on_error$ not \"\n"
              "               \"overridden)\", call.cid, error.ToString());\n"
              "}\n");
    }
    p.Print(
        "\n"
        "::absl::Status $callbacks$::HandleCompletion(\n"
        "    const ::callmesh::v1::Completion& completion) {\n"
        "  const ::callmesh::CallInfo call = ::callmesh::CallInfo::From(completion);\n",
        "callbacks", plan.callbacks);
    for (const MethodNames& m : plan.methods) {
      p.Print(Vars(plan, m),
              "  if (call.method == \"$path$\") {\n"
              "    ::absl::StatusOr<$Reply$> reply =\n"
              "        ::callmesh::TypedReply<$Reply$>(completion, \"$path$\");\n"
              "    if (reply.ok()) {\n"
              "      $on$(call, *reply);\n"
              "    } else {\n"
              "      $on_error$(call, reply.status());\n"
              "    }\n"
              "    return ::absl::OkStatus();\n"
              "  }\n");
    }
    p.Print(
        "  return ::absl::NotFoundError(\"$callbacks$ has no method \" + call.method);\n"
        "}\n",
        "callbacks", plan.callbacks);
  }
  if (!ns.empty()) p.Print("\n}  // namespace $ns$\n", "ns", ns);
}

}  // namespace

bool Generator::Generate(const FileDescriptor* file, const std::string& parameter,
                         pb::compiler::GeneratorContext* context, std::string* error) const {
  Options options;
  if (!ParseOptions(parameter, &options, error)) return false;
  std::vector<ServicePlan> plans;
  if (!Plan(file, options, &plans, error)) return false;
  const std::string base(absl::StripSuffix(file->name(), ".proto"));
  {
    std::unique_ptr<pb::io::ZeroCopyOutputStream> out(context->Open(base + ".callmesh.h"));
    Printer printer(out.get(), '$');
    PrintHeader(file, options, plans, base, printer);
  }
  {
    std::unique_ptr<pb::io::ZeroCopyOutputStream> out(context->Open(base + ".callmesh.cc"));
    Printer printer(out.get(), '$');
    PrintSource(file, plans, base, printer);
  }
  return true;
}

}  // namespace callmesh::stubs

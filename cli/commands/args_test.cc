#include "cli/commands/args.h"

#include "gtest/gtest.h"

namespace callmesh::cli {
namespace {

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {.name = "data", .short_name = 'd', .value_name = "JSON"},
      {.name = "async"},
      {.name = "header", .value_name = "KV", .repeated = true},
      {.name = "timeout", .value_name = "D"},
  };
  return *specs;
}

TEST(ParseArgs, AcceptsFlagsAnywhereInAllForms) {
  absl::StatusOr<ParsedArgs> args =
      ParseArgs({"greeter", "-d", "{}", "--async", "SayHello", "--header=a=1", "--header", "b=2",
                 "--timeout=5s", "--", "--literal"},
                Specs(), "callmesh invoke");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->positionals, (std::vector<std::string>{"greeter", "SayHello", "--literal"}));
  EXPECT_EQ(args->Get("data"), "{}");
  EXPECT_TRUE(args->Has("async"));
  EXPECT_EQ(args->GetAll("header"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(args->Get("timeout"), "5s");
  EXPECT_EQ(ParseArgs({"-d{}"}, Specs(), "x")->Get("data"), "{}");
  EXPECT_EQ(ParseArgs({"-"}, Specs(), "x")->positionals, std::vector<std::string>{"-"});
}

TEST(ParseArgs, UnknownFlagIsNamedWithAHint) {
  absl::StatusOr<ParsedArgs> args = ParseArgs({"--timout", "5s"}, Specs(), "callmesh invoke");
  ASSERT_FALSE(args.ok());
  EXPECT_EQ(args.status().message(),
            "unknown flag --timout for 'callmesh invoke'; did you mean --timeout? (see 'callmesh "
            "invoke --help')");
  EXPECT_FALSE(ParseArgs({"-x"}, Specs(), "c").ok());
}

TEST(ParseArgs, MissingValueAndRepeatsAreErrors) {
  EXPECT_EQ(ParseArgs({"--data"}, Specs(), "c").status().message(),
            "flag --data needs a value (JSON)");
  EXPECT_EQ(ParseArgs({"--async=yes"}, Specs(), "c").status().message(),
            "flag --async takes no value");
  EXPECT_FALSE(ParseArgs({"-d", "{}", "-d", "[]"}, Specs(), "c").ok());
}

TEST(FlagHelp, AlignsNamesAndHelp) {
  EXPECT_EQ(FlagHelp({{.name = "data", .short_name = 'd', .value_name = "JSON", .help = "body"},
                      {.name = "async", .help = "no wait"}}),
            "  -d, --data JSON   body\n"
            "      --async       no wait\n");
}

}  // namespace
}  // namespace callmesh::cli

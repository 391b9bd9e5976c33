// `fastgen run` with --json-schema / --json / --regex / --grammar / --ban, as a user runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include <nlohmann/json.hpp>

#include "cli_test_util.h"
#include "test_util.h"

namespace fastgen {
namespace {

using testing::SharedPath;

testing::CliResult RunFg(const std::string& args) {
  return testing::RunFastgen("run -m " + SharedPath("models/fg-target") + " -p 'Data: ' -n 200 --ignore-eos " + args);
}

std::string Stdout(const testing::CliResult& r) {
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();  // run ends with a newline
  return out;
}

TEST(CliStructuredOutput, SchemaJsonRegexAndGrammarShapeTheOutput) {
  const std::string schema = testing::ScratchDir("fastgen_cli_structured") + "/schema.json";
  std::ofstream(schema) << R"({"type": "object", "properties": {"id": {"type": "integer", "minimum": 1, "maximum": 9},
    "tag": {"enum": ["x", "y"]}}, "required": ["id", "tag"], "additionalProperties": false})";
  for (const char* temp : {"0", "1"}) {
    auto r = RunFg(std::string("--temp ") + temp + " --json-schema " + schema);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(Stdout(r), nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    EXPECT_TRUE(j["id"].is_number_integer() && j["id"] >= 1 && j["id"] <= 9) << r.out;
    EXPECT_TRUE(j["tag"] == "x" || j["tag"] == "y") << r.out;
    EXPECT_EQ(j.size(), 2u) << r.out;

    r = RunFg(std::string("--temp ") + temp + " --json --json-compact");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(nlohmann::json::parse(Stdout(r), nullptr, false).is_discarded()) << r.out;

    r = RunFg(std::string("--temp ") + temp + " --regex '[A-Z][a-z]{2,8}-[0-9]{3}'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(std::regex_match(Stdout(r), std::regex("[A-Z][a-z]{2,8}-[0-9]{3}"))) << r.out;

    r = RunFg(std::string("--temp ") + temp + " --grammar 'root ::= (\"yes\" | \"no\") \" \" [0-9]+ \".\"'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(std::regex_match(Stdout(r), std::regex("(yes|no) [0-9]+\\."))) << r.out;
  }
}

TEST(CliStructuredOutput, BadInputIsAClearError) {
  auto r = RunFg("--grammar 'root ::= \"a\" |\nbad ::= ['");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--grammar"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r.err;
  r = RunFg("--json-schema '{\"type\": \"object\", \"not\": {}}'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not"), std::string::npos) << r.err;
  r = RunFg("--json-schema '{\"type\": '");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--json-schema"), std::string::npos) << r.err;
  r = RunFg("--regex 'a(?=b)'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--regex"), std::string::npos) << r.err;
  r = RunFg("--json --regex a");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("excludes"), std::string::npos) << r.err;
  r = RunFg("--ban x --spec lookup");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--ban"), std::string::npos) << r.err;
}

TEST(CliStructuredOutput, BanAndSpeculationComposeWithGrammars) {
  auto r = RunFg("--temp 0 --ban e --ban th --regex '[a-z ]{20,40}'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Stdout(r).find('e'), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_match(Stdout(r), std::regex("[a-z ]{20,40}"))) << r.out;
  const std::string g = "--grammar 'root ::= (\"def \" [a-z_]+ \"(x):\\n    return x\\n\\n\"){1,5}'";
  auto plain = RunFg("--temp 0 " + g);
  auto spec = RunFg("--temp 0 --spec draft --draft-model " + SharedPath("models/fg-draft") + " " + g);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(spec.exit_code, 0) << spec.err;
  EXPECT_EQ(spec.out, plain.out);
}

// --stop: the text ends before the first stop string, however tokens split it; without a match
// the output is unchanged.
TEST(CliStructuredOutput, StopStrings) {
  const std::string base = "run -m " + SharedPath("models/fg-target") + " -p 'def fib(n):' -n 40 --temp 0 ";
  auto plain = testing::RunFastgen(base);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const size_t at = plain.out.find("return");
  ASSERT_NE(at, std::string::npos) << plain.out;
  auto stopped = testing::RunFastgen(base + "--stop return --stop 'never written at all'");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(stopped.out, plain.out.substr(0, at) + "\n");
  auto unmatched = testing::RunFastgen(base + "--stop 'never written at all'");
  EXPECT_EQ(unmatched.out, plain.out);
}

// --beams: n-best hypotheses one per line with their scores, best first, under a grammar too;
// refused with what it does not combine with.
TEST(CliStructuredOutput, BeamSearch) {
  const std::string base = "run -m " + SharedPath("models/fg-target") + " -p 'def fib(n):' -n 12 --print-ids ";
  auto r = testing::RunFastgen(base + "--beams 4 --n-best 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 3) << r.out;
  EXPECT_NE(r.err.find("beam 3:"), std::string::npos) << r.err;
  auto one = testing::RunFastgen(base + "--beams 1 --ignore-eos");
  auto greedy = testing::RunFastgen(base + "--temp 0 --ignore-eos");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, greedy.out);  // one beam is greedy decoding
  // Under a schema every hypothesis is a JSON document of it; diverse groups give distinct ones.
  auto json = testing::RunFastgen("run -m " + SharedPath("models/fg-target") +
                                  " -p 'Data: ' -n 40 --beams 4 --n-best 4 --beam-groups 2 --diversity-penalty 2 "
                                  "--regex '[a-z]{3,6}( [a-z]{3,6}){2}'");
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_NE(json.err.find("2 group(s)"), std::string::npos) << json.err;
  std::vector<std::string> lines;
  for (size_t at = 0, nl; (nl = json.out.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(json.out.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 4u) << json.out;
  for (const auto& line : lines) EXPECT_TRUE(std::regex_match(line, std::regex("[a-z]{3,6}( [a-z]{3,6}){2}"))) << line;
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(std::unique(lines.begin(), lines.end()), lines.end()) << json.out;
  for (const char* bad : {"--beams 4 --n-best 5", "--beams 0", "--beams 2 --spec lookup", "--beams 4 --beam-groups 3",
                          "--beams 2 --diversity-penalty -1", "--beams 2 --ban x"}) {
    auto e = testing::RunFastgen(base + bad);
    EXPECT_NE(e.exit_code, 0) << bad;
    EXPECT_TRUE(e.err.find("beam") != std::string::npos || e.err.find("--diversity-penalty") != std::string::npos)
        << bad << ": " << e.err;
  }
}

}  // namespace
}  // namespace fastgen

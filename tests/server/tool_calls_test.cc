// Tool-call grammars and the parse of answers into calls.
#include <gtest/gtest.h>

#include "decoding/constrained/grammar.h"
#include "decoding/constrained/matcher.h"
#include "server/tool_calls.h"

namespace fastgen::server {
namespace {

std::vector<ToolSpec> Tools() {
  return {{"get_weather",
           {{"type", "object"},
            {"properties", {{"city", {{"type", "string"}}}, {"unit", {{"enum", {"C", "F"}}}}}},
            {"required", {"city"}}}},
          {"add", {{"type", "object"}, {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "integer"}}}}},
                   {"required", {"a", "b"}}}}};
}

bool Matches(const std::string& gbnf, const std::string& text) {
  auto g = constrained::Grammar::Parse(gbnf, kToolCallRoot);
  EXPECT_TRUE(g.ok()) << g.status().message();
  if (!g.ok()) return false;
  constrained::GrammarMatcher m(*g);
  return m.Accept(text) && m.CanEnd();
}

TEST(ToolCalls, GrammarOfEachSyntax) {
  auto hermes = ToolCallGbnf(Tools(), "", /*parallel=*/true, ToolCallSyntax::kHermes);
  ASSERT_TRUE(hermes.ok()) << hermes.status().message();
  EXPECT_TRUE(Matches(*hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"));
  EXPECT_TRUE(Matches(*hermes, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>\n"
                               "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\", \"unit\": \"C\"}}\n</tool_call>"));
  EXPECT_FALSE(Matches(*hermes, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>"));  // b missing
  EXPECT_FALSE(Matches(*hermes, "<tool_call>\n{\"name\": \"mul\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(Matches(*hermes, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2, \"c\": 3}}\n</tool_call>"));

  auto one = ToolCallGbnf(Tools(), "add", /*parallel=*/false, ToolCallSyntax::kJsonLines);
  ASSERT_TRUE(one.ok());
  EXPECT_TRUE(Matches(*one, "{\"name\": \"add\", \"arguments\": {\"a\": -4, \"b\": 5}}"));
  EXPECT_FALSE(Matches(*one, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}"));
  EXPECT_FALSE(Matches(*one, "{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}"));

  auto llama = ToolCallGbnf(Tools(), "", false, ToolCallSyntax::kLlama31);
  ASSERT_TRUE(llama.ok());
  EXPECT_TRUE(Matches(*llama, "{\"name\": \"add\", \"parameters\": {\"a\": 1, \"b\": 2}}"));

  EXPECT_FALSE(ToolCallGbnf(Tools(), "nope", false, ToolCallSyntax::kJsonLines).ok());
  std::vector<ToolSpec> bad = {{"f", {{"type", "object"}, {"not", {{"type", "string"}}}}}};
  auto err = ToolCallGbnf(bad, "", false, ToolCallSyntax::kJsonLines);
  ASSERT_FALSE(err.ok());
  EXPECT_NE(err.status().message().find("not"), std::string::npos) << err.status().message();
}

TEST(ToolCalls, SyntaxFromTheTemplate) {
  EXPECT_EQ(ToolCallSyntaxOf("{% for tool in tools %}<tools>{{ tool | tojson }}</tools>{% endfor %} <tool_call>"),
            ToolCallSyntax::kHermes);
  EXPECT_EQ(ToolCallSyntaxOf("Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}."),
            ToolCallSyntax::kLlama31);
  EXPECT_EQ(ToolCallSyntaxOf("{{ messages }}"), ToolCallSyntax::kJsonLines);
}

TEST(ToolCalls, ParsesAnswers) {
  const auto tools = Tools();
  ParsedAnswer a = ParseToolCalls("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                                  ToolCallSyntax::kHermes, tools);
  ASSERT_EQ(a.calls.size(), 1u);
  EXPECT_EQ(a.calls[0].name, "get_weather");
  EXPECT_EQ(a.calls[0].arguments, "{\"city\":\"Paris\"}");
  EXPECT_EQ(a.content, "Let me check.");
  // An unknown tool or broken JSON stays text.
  a = ParseToolCalls("<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call> and <tool_call>{oops</tool_call>",
                     ToolCallSyntax::kHermes, tools);
  EXPECT_TRUE(a.calls.empty());
  EXPECT_EQ(a.content, "<tool_call>{\"name\": \"rm\", \"arguments\": {}}</tool_call> and <tool_call>{oops</tool_call>");
  a = ParseToolCalls("{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n{\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}\n",
                     ToolCallSyntax::kJsonLines, tools);
  ASSERT_EQ(a.calls.size(), 2u);
  EXPECT_EQ(a.calls[1].arguments, "{\"a\":3,\"b\":4}");
  a = ParseToolCalls("{\n  \"name\": \"add\",\n  \"arguments\": {\"a\": 1, \"b\": \"}\"}\n}\n\n", ToolCallSyntax::kJsonLines, tools);
  ASSERT_EQ(a.calls.size(), 1u);  // spread over lines, a brace inside a string
  EXPECT_EQ(a.calls[0].arguments, "{\"a\":1,\"b\":\"}\"}");
  a = ParseToolCalls("The answer is {\"name\": \"add\"}", ToolCallSyntax::kJsonLines, tools);
  EXPECT_TRUE(a.calls.empty());
  EXPECT_EQ(a.content, "The answer is {\"name\": \"add\"}");
}

}  // namespace
}  // namespace fastgen::server

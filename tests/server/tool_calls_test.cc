// Tool-call grammars and the parse of answers into calls.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <random>

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
  EXPECT_EQ(ToolCallSyntaxOf("{%- if message.tool_calls %}{{- \"[TOOL_CALLS] [\" }}"), ToolCallSyntax::kMistral);
  // Mistral's templates refuse ids other than 9 letters and digits in the history.
  const std::string id = ToolCallId(ToolCallSyntax::kMistral);
  EXPECT_EQ(id.size(), 9u);
  EXPECT_TRUE(std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); })) << id;
  EXPECT_NE(ToolCallId(ToolCallSyntax::kMistral), id);
  EXPECT_EQ(ToolCallId(ToolCallSyntax::kHermes).rfind("call_", 0), 0u);
}

TEST(ToolCalls, MistralArraysOfCalls) {
  const auto tools = Tools();
  auto gbnf = ToolCallGbnf(tools, "", /*parallel=*/true, ToolCallSyntax::kMistral);
  ASSERT_TRUE(gbnf.ok()) << gbnf.status().message();
  const std::string two = "[{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, "
                          "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Lyon\"}}]";
  EXPECT_TRUE(Matches(*gbnf, two));
  EXPECT_FALSE(Matches(*gbnf, "[]"));
  auto one = ToolCallGbnf(tools, "add", /*parallel=*/false, ToolCallSyntax::kMistral);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(Matches(*one, two));
  EXPECT_TRUE(Matches(*one, "[{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}]"));
  // With the marker (special tokens kept) or without it, text before it is content.
  for (const std::string& text : {"[TOOL_CALLS] " + two, two, "Calling. [TOOL_CALLS]" + two}) {
    const ParsedAnswer a = ParseToolCalls(text, ToolCallSyntax::kMistral, tools);
    ASSERT_EQ(a.calls.size(), 2u) << text;
    EXPECT_EQ(a.calls[1].name, "get_weather");
    EXPECT_EQ(a.calls[0].arguments, "{\"a\":1,\"b\":2}");
    EXPECT_EQ(a.content, text[0] == 'C' ? "Calling." : "");
  }
  // An array that is not all calls to known tools is text.
  for (const std::string text : {"[1, 2]", "[TOOL_CALLS][{\"name\": \"rm\", \"arguments\": {}}]", "[TOOL_CALLS] no array"}) {
    const ParsedAnswer a = ParseToolCalls(text, ToolCallSyntax::kMistral, tools);
    EXPECT_TRUE(a.calls.empty()) << text;
    EXPECT_EQ(a.content, text);
  }
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

// tool_choice "auto" under Hermes' syntax: after "<tool_call>" the body of one call to a known
// tool with its parameters, through "</tool_call>"; no trigger where the syntax has none to spot.
TEST(ToolCalls, LazyGrammarOfACallsBody) {
  auto lazy = ToolCallLazyGbnf(Tools(), ToolCallSyntax::kHermes);
  ASSERT_TRUE(lazy.ok()) << lazy.status().message();
  EXPECT_EQ(lazy->trigger, "<tool_call>");
  EXPECT_TRUE(Matches(lazy->gbnf, "\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>"));
  EXPECT_TRUE(Matches(lazy->gbnf, "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>"));
  EXPECT_FALSE(Matches(lazy->gbnf, "\n{\"name\": \"add\", \"arguments\": {\"a\": 1}}\n</tool_call>"));
  EXPECT_FALSE(Matches(lazy->gbnf, "\n{\"name\": \"rm\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(Matches(lazy->gbnf, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>"));
  for (ToolCallSyntax s : {ToolCallSyntax::kJsonLines, ToolCallSyntax::kLlama31, ToolCallSyntax::kMistral}) {
    auto none = ToolCallLazyGbnf(Tools(), s);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->trigger.empty());
  }
}

// What a client accumulates from a stream's deltas.
struct Streamed {
  std::string content;
  std::vector<ToolCall> calls;
};

Streamed Accumulate(const std::vector<std::string>& pieces, ToolCallSyntax syntax) {
  ToolCallStream stream(syntax, Tools());
  Streamed out;
  const auto take = [&](const std::vector<ToolStreamDelta>& deltas) {
    for (const ToolStreamDelta& d : deltas) {
      switch (d.kind) {
        case ToolStreamDelta::Kind::kContent:
          out.content += d.text;
          break;
        case ToolStreamDelta::Kind::kCallHeader:
          EXPECT_EQ(d.call, static_cast<int>(out.calls.size()));
          out.calls.push_back({d.text, ""});
          break;
        case ToolStreamDelta::Kind::kArguments:
          EXPECT_EQ(d.call + 1, static_cast<int>(out.calls.size()));
          out.calls.back().arguments += d.text;
          break;
      }
    }
  };
  for (const std::string& p : pieces) take(stream.Feed(p));
  take(stream.Finish());
  EXPECT_EQ(stream.calls(), static_cast<int>(out.calls.size()));
  return out;
}

// Streamed in any pieces, an answer accumulates to what the whole answer parses to: its text as
// content and its calls with the same names and arguments (compared as JSON: a stream sends the
// model's own spelling, the parse re-serializes it).
TEST(ToolCalls, StreamedPiecesAccumulateToTheParse) {
  const std::vector<std::pair<ToolCallSyntax, std::string>> answers = {
      {ToolCallSyntax::kHermes, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa}ris\\\"\", "
                                "\"unit\": \"C\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"add\", \"arguments\": "
                                "{\"a\": 1, \"b\": [2]}}\n</tool_call>  Done <tool"},
      {ToolCallSyntax::kHermes, "No calls here, just a < sign and <tool_ca text."},
      {ToolCallSyntax::kHermes, "<tool_call>\n{\"arguments\": {\"a\": 1, \"b\": 2}, \"name\": \"add\"}\n</tool_call>"},
      {ToolCallSyntax::kHermes, "x <tool_call>{\"name\": \"mul\", \"arguments\": {}}</tool_call> y"},
      {ToolCallSyntax::kHermes, "<tool_call>not json</tool_call>"},
      {ToolCallSyntax::kHermes, "text then an unfinished <tool_call>\n{\"name\": \"ad"},
      {ToolCallSyntax::kJsonLines, "\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n"
                                   "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"{[\"}}\n"},
      {ToolCallSyntax::kLlama31, "{\"name\": \"add\", \"parameters\": {\"a\": 3, \"b\": 4}}"},
      {ToolCallSyntax::kJsonLines, "  Plain text {with braces}."},
      {ToolCallSyntax::kJsonLines, "{\"arguments\": {\"city\": \"Rome\"}, \"name\": \"get_weather\"}"},
      {ToolCallSyntax::kJsonLines, ""},
      {ToolCallSyntax::kMistral, "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}, "
                                 "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"]}\"}}]"},
      {ToolCallSyntax::kMistral, "Sure. [TOOL_CALLS][{\"arguments\": {\"a\": 5, \"b\": 6}, \"name\": \"add\"}] done"},
      {ToolCallSyntax::kMistral, "[{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}]"},
      {ToolCallSyntax::kMistral, "[1, 2] is a list, [TOOL not a marker"},
      {ToolCallSyntax::kMistral, "  [TOOL"},
  };
  // The calls each answer holds, as ParseToolCalls reads it (checked, so that the comparison
  // below covers calls at all).
  const std::vector<size_t> calls = {2, 0, 1, 0, 0, 0, 2, 1, 0, 1, 0, 2, 1, 1, 0, 0};
  std::mt19937 rng(7);
  for (size_t a = 0; a < answers.size(); ++a) {
    const auto& [syntax, text] = answers[a];
    const ParsedAnswer want = ParseToolCalls(text, syntax, Tools());
    ASSERT_EQ(want.calls.size(), calls[a]) << text;
    std::vector<std::vector<std::string>> splits = {{text}};
    std::vector<std::string> bytes;
    for (char c : text) bytes.emplace_back(1, c);
    splits.push_back(bytes);
    for (int r = 0; r < 20; ++r) {
      std::vector<std::string> pieces;
      for (size_t at = 0; at < text.size();) {
        const size_t n = std::min<size_t>(text.size() - at, 1 + rng() % 7);
        pieces.push_back(text.substr(at, n));
        at += n;
      }
      splits.push_back(pieces);
    }
    for (const auto& pieces : splits) {
      const Streamed got = Accumulate(pieces, syntax);
      ASSERT_EQ(got.content, want.content) << text;
      ASSERT_EQ(got.calls.size(), want.calls.size()) << text;
      for (size_t i = 0; i < got.calls.size(); ++i) {
        EXPECT_EQ(got.calls[i].name, want.calls[i].name) << text;
        EXPECT_EQ(nlohmann::json::parse(got.calls[i].arguments, nullptr, false),
                  nlohmann::json::parse(want.calls[i].arguments))
            << text << " / " << got.calls[i].arguments;
      }
    }
  }
}

// The arguments arrive in pieces as they are written, not at the end: after the call's header,
// feeding the first half of the arguments sends that half.
TEST(ToolCalls, ArgumentsStreamAsWritten) {
  ToolCallStream stream(ToolCallSyntax::kHermes, Tools());
  auto d = stream.Feed("Sure. <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci");
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].kind, ToolStreamDelta::Kind::kContent);
  EXPECT_EQ(d[0].text, "Sure.");
  EXPECT_EQ(d[1].kind, ToolStreamDelta::Kind::kCallHeader);
  EXPECT_EQ(d[1].text, "get_weather");
  EXPECT_EQ(d[2].kind, ToolStreamDelta::Kind::kArguments);
  EXPECT_EQ(d[2].text, "{\"ci");
  d = stream.Feed("ty\": \"Oslo\"}}\n</tool_call>");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].text, "ty\": \"Oslo\"}");
  EXPECT_TRUE(stream.Finish().empty());
  // Text after calls in the bare-JSON syntax cannot take the calls back: it comes as content.
  ToolCallStream bare(ToolCallSyntax::kJsonLines, Tools());
  auto b = bare.Feed("{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}} and then text");
  auto f = bare.Finish();
  b.insert(b.end(), f.begin(), f.end());
  ASSERT_GE(b.size(), 3u);
  EXPECT_EQ(b.back().kind, ToolStreamDelta::Kind::kContent);
  EXPECT_EQ(b.back().text, "and then text");
}

}  // namespace
}  // namespace fastgen::server

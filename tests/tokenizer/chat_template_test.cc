// Chat templates of real models rendered by fastgen against @huggingface/jinja (the engine
// transformers.js uses), byte for byte.
//
// The expected strings are produced at test time: the cases below are written to a JSON file and
// rendered by scripts/render_chat_templates.mjs under Node. That needs `node` on PATH and the npm
// package installed, by the test setup, with
//   npm install --prefix <build dir>/npm @huggingface/jinja
// The package is looked up in $FASTGEN_NODE_MODULES, else ./npm/node_modules (ctest runs tests
// in the build directory). Without node or the package these tests FAIL, on purpose: a silent
// skip would let parity regressions through.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

namespace fastgen {
namespace {

using ojson = nlohmann::ordered_json;

const std::string kShared = FASTGEN_SHARED_DIR;

struct Case {
  std::string id;
  std::string model;  // llama3, qwen3, gemma3
  ojson messages;
  bool add_generation_prompt = true;
  ojson extra_context = ojson::object();
};

ojson Msg(const std::string& role, const std::string& content) { return {{"role", role}, {"content", content}}; }

std::string TemplateOf(const std::string& model) {
  Expected<std::string> t = LoadChatTemplate(kShared + "/tokenizers/" + model + ".tokenizer_config.json");
  return t.ok() ? *t : std::string();
}

std::string BosOf(const std::string& model) { return model == "llama3" ? "<|begin_of_text|>" : model == "gemma3" ? "<bos>" : ""; }
std::string EosOf(const std::string& model) {
  return model == "llama3" ? "<|end_of_text|>" : model == "gemma3" ? "<end_of_turn>" : "<|im_end|>";
}

// Conversations every template renders, each with and without the generation prompt.
std::vector<std::pair<std::string, ojson>> CommonConversations() {
  const std::string tricky =
      "Quotes \" and ' and a backslash \\ , braces {{ not jinja }} {% raw %} {# x #}, tags "
      "<|eot_id|> <start_of_turn> <|im_end|>\n\ttab-indented line\r\nCRLF line\n\n";
  const std::string unicode = "  Héllo wörld — 你好, мир! 🦙🚀 e\u0301 \u00a0nbsp\u3000";
  return {
      {"user_only", ojson::array({Msg("user", "Hello!")})},
      {"system_user", ojson::array({Msg("system", "You are a helpful assistant."), Msg("user", "What is 2+2?")})},
      {"multi_turn", ojson::array({Msg("system", "Be brief."), Msg("user", "Hi"), Msg("assistant", "Hello! How can I help?"),
                                   Msg("user", "Tell me a joke."), Msg("assistant", "Why did the chicken cross the road?"),
                                   Msg("user", "Why?")})},
      {"no_system_multi_turn", ojson::array({Msg("user", "one"), Msg("assistant", "two"), Msg("user", "three")})},
      {"special_chars", ojson::array({Msg("system", tricky), Msg("user", tricky), Msg("assistant", tricky), Msg("user", "ok")})},
      {"unicode_whitespace", ojson::array({Msg("user", unicode), Msg("assistant", "\n\n " + unicode + " \n"), Msg("user", "\u2028x\u2029")})},
      {"empty_content", ojson::array({Msg("user", ""), Msg("assistant", ""), Msg("user", "   ")})},
      {"ends_with_assistant", ojson::array({Msg("user", "Complete this:"), Msg("assistant", "Sure, here")})},
  };
}

std::vector<Case> BuildCases() {
  std::vector<Case> cases;
  for (const std::string model : {"llama3", "qwen3", "gemma3"}) {
    for (const auto& [name, messages] : CommonConversations()) {
      for (bool gen : {true, false}) {
        cases.push_back({model + "/" + name + (gen ? "/gen" : "/nogen"), model, messages, gen, ojson::object()});
      }
    }
  }

  // Qwen3: thinking on/off, reasoning in history before and after the last user turn, tools.
  const ojson think_history = ojson::array(
      {Msg("user", "First question"),
       Msg("assistant", "<think>\nLet me think about the first.\n</think>\n\nFirst answer."),
       Msg("user", "Second question"),
       Msg("assistant", "<think>\n  reasoning two  \n</think>\n\n\nSecond answer.")});
  for (const ojson& thinking : {ojson(), ojson(true), ojson(false)}) {
    const std::string suffix = thinking.is_null() ? "unset" : thinking.get<bool>() ? "true" : "false";
    ojson extra = ojson::object();
    if (!thinking.is_null()) extra["enable_thinking"] = thinking;
    cases.push_back({"qwen3/thinking_" + suffix, "qwen3", ojson::array({Msg("user", "Solve x+1=2")}), true, extra});
    cases.push_back({"qwen3/think_history_" + suffix, "qwen3", think_history, true, extra});
    ojson pending = think_history;
    pending.push_back(Msg("user", "Third"));
    cases.push_back({"qwen3/think_history_pending_" + suffix, "qwen3", pending, true, extra});
  }
  ojson reasoning_field = ojson::array({Msg("user", "q"), Msg("assistant", "answer")});
  reasoning_field[1]["reasoning_content"] = "explicit reasoning";
  cases.push_back({"qwen3/reasoning_content_field", "qwen3", reasoning_field, false, ojson::object()});

  const ojson tools = ojson::parse(R"([
    {"type": "function", "function": {"name": "get_weather", "description": "Weather \"now\" in a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]},
     "days": {"type": "integer", "default": 1}, "ratio": {"type": "number", "default": 0.5}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "noop", "parameters": {}}}
  ])");
  ojson tool_conv = ojson::array({Msg("system", "Use tools."), Msg("user", "Weather in Paris?")});
  ojson call_msg = Msg("assistant", "");
  call_msg["tool_calls"] = ojson::parse(
      R"([{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}},
          {"type": "function", "function": {"name": "noop", "arguments": "{\"raw\": true}"}}])");
  tool_conv.push_back(call_msg);
  tool_conv.push_back(Msg("tool", "{\"temp\": 21}"));
  tool_conv.push_back(Msg("tool", "done"));
  ojson tool_extra = {{"tools", tools}};
  cases.push_back({"qwen3/tools_first_turn", "qwen3", ojson::array({Msg("user", "Weather in Paris?")}), true, tool_extra});
  cases.push_back({"qwen3/tools_full_exchange", "qwen3", tool_conv, true, tool_extra});
  cases.push_back({"qwen3/tool_calls_without_tools", "qwen3", tool_conv, false, ojson::object()});
  ojson tool_response_user = ojson::array({Msg("user", "q"), Msg("assistant", "a"),
                                           Msg("user", "<tool_response>\nx\n</tool_response>")});
  cases.push_back({"qwen3/user_tool_response", "qwen3", tool_response_user, true, ojson::object()});

  // Gemma 3: system folded into the first user turn, multimodal content lists, role errors.
  ojson multimodal = ojson::array({Msg("system", "sys"), Msg("user", "")});
  multimodal[1]["content"] = ojson::parse(R"([{"type": "image"}, {"type": "text", "text": "  What is this?  "}])");
  cases.push_back({"gemma3/multimodal_content", "gemma3", multimodal, true, ojson::object()});
  ojson list_system = ojson::array({Msg("system", ""), Msg("user", "hi")});
  list_system[0]["content"] = ojson::parse(R"([{"type": "text", "text": "system as list"}])");
  cases.push_back({"gemma3/system_content_list", "gemma3", list_system, true, ojson::object()});

  // Error cases (the reference raises; so must we).
  cases.push_back({"gemma3/error_two_users", "gemma3", ojson::array({Msg("user", "a"), Msg("user", "b")}), true, ojson::object()});
  cases.push_back({"gemma3/error_assistant_first", "gemma3", ojson::array({Msg("assistant", "a")}), true, ojson::object()});
  ojson bad_content = ojson::array({Msg("user", "")});
  bad_content[0]["content"] = 42;
  cases.push_back({"gemma3/error_content_type", "gemma3", bad_content, true, ojson::object()});
  ojson null_content = ojson::array({Msg("user", "q"), Msg("assistant", "")});
  null_content[1]["content"] = nullptr;
  cases.push_back({"qwen3/error_null_assistant_content", "qwen3", null_content, true, ojson::object()});

  // No messages at all.
  for (const std::string model : {"llama3", "qwen3", "gemma3"}) {
    cases.push_back({model + "/no_messages", model, ojson::array(), true, ojson::object()});
  }
  return cases;
}

// Turns a JSON message into the public ChatMessage: string role/content, everything else extra.
ChatMessage ToChatMessage(const ojson& m) {
  ChatMessage msg;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (it.key() == "role" && it->is_string()) {
      msg.role = it->get<std::string>();
    } else if (it.key() == "content" && it->is_string()) {
      msg.content = it->get<std::string>();
    } else {
      msg.extra[it.key()] = it.value();
    }
  }
  return msg;
}

struct Expectation {
  bool ok = false;
  std::string text;  // output, or the reference's error message
};

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class ChatTemplateParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cases_ = new std::vector<Case>(BuildCases());
    expected_ = new std::map<std::string, Expectation>();
    setup_error_ = new std::string();
    *setup_error_ = GenerateExpectations();
  }
  static void TearDownTestSuite() {
    delete cases_;
    delete expected_;
    delete setup_error_;
  }

  // Runs the Node reference over all cases; returns an error message, or "" on success.
  static std::string GenerateExpectations() {
    namespace fs = std::filesystem;
    // One directory per process: ctest -j runs each test of this suite in its own process.
    const fs::path dir =
        fs::path(::testing::TempDir()) / ("fastgen_chat_template_parity." + std::to_string(getpid()));
    std::error_code ec;
    fs::create_directories(dir, ec);
    ojson input = {{"cases", ojson::array()}};
    for (const Case& c : *cases_) {
      const std::string tmpl = TemplateOf(c.model);
      if (tmpl.empty()) return "cannot load the chat template of " + c.model + " from " + kShared;
      input["cases"].push_back({{"id", c.id}, {"template", tmpl}, {"messages", c.messages},
                                {"add_generation_prompt", c.add_generation_prompt},
                                {"bos_token", BosOf(c.model)}, {"eos_token", EosOf(c.model)},
                                {"extra_context", c.extra_context}});
    }
    const fs::path cases_path = dir / "cases.json", out_path = dir / "expected.json", err_path = dir / "node.err";
    std::ofstream(cases_path) << input.dump();
    fs::remove(out_path, ec);

    std::string modules;
    if (const char* env = std::getenv("FASTGEN_NODE_MODULES")) modules = env;
    else if (fs::exists("npm/node_modules/@huggingface/jinja", ec)) modules = fs::absolute("npm/node_modules").string();
    const std::string cmd = "node \"" + std::string(FASTGEN_SOURCE_DIR) + "/scripts/render_chat_templates.mjs\" " +
                            (modules.empty() ? "" : "--node-modules \"" + modules + "\" ") + "\"" +
                            cases_path.string() + "\" \"" + out_path.string() + "\" 2> \"" + err_path.string() + "\"";
    const int rc = std::system(cmd.c_str());
    if (rc != 0 || !fs::exists(out_path, ec)) {
      return "generating expectations with Node failed (exit " + std::to_string(rc) + "): " + ReadAll(err_path) +
             "\nThis test needs `node` and `npm install --prefix <build>/npm @huggingface/jinja` "
             "(or FASTGEN_NODE_MODULES=<dir>/node_modules). Command: " + cmd;
    }
    const ojson out = ojson::parse(ReadAll(out_path), nullptr, false);
    if (out.is_discarded() || !out.contains("results")) return "cannot parse " + out_path.string();
    for (const auto& r : out["results"]) {
      Expectation e;
      e.ok = r.value("ok", false);
      e.text = e.ok ? r.value("output", "") : r.value("error", "");
      (*expected_)[r.value("id", "")] = e;
    }
    fs::remove_all(dir, ec);
    return "";
  }

  // Renders every case whose id starts with `prefix` and compares it with the reference.
  static void CheckCases(const std::string& prefix) {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    int checked = 0;
    for (const Case& c : *cases_) {
      if (c.id.rfind(prefix, 0) != 0) continue;
      SCOPED_TRACE(c.id);
      const auto it = expected_->find(c.id);
      ASSERT_NE(it, expected_->end()) << "no reference result for " << c.id;
      ChatTemplateInputs in;
      for (const auto& m : c.messages) in.messages.push_back(ToChatMessage(m));
      in.add_generation_prompt = c.add_generation_prompt;
      in.bos_token = BosOf(c.model);
      in.eos_token = EosOf(c.model);
      in.extra_context = c.extra_context;
      Expected<std::string> got = RenderChatTemplate(TemplateOf(c.model), in);
      if (it->second.ok) {
        ASSERT_TRUE(got.ok()) << got.status().message();
        EXPECT_EQ(*got, it->second.text);
      } else {
        EXPECT_FALSE(got.ok()) << "reference failed with \"" << it->second.text << "\" but fastgen rendered:\n"
                               << *got;
        if (!got.ok() && got.status().message().find("raise_exception: ") != std::string::npos) {
          EXPECT_NE(got.status().message().find(it->second.text), std::string::npos)
              << got.status().message() << " should name the template's message: " << it->second.text;
        }
      }
      ++checked;
    }
    EXPECT_GT(checked, 0);
  }

  static std::vector<Case>* cases_;
  static std::map<std::string, Expectation>* expected_;
  static std::string* setup_error_;
};

std::vector<Case>* ChatTemplateParityTest::cases_ = nullptr;
std::map<std::string, Expectation>* ChatTemplateParityTest::expected_ = nullptr;
std::string* ChatTemplateParityTest::setup_error_ = nullptr;

TEST_F(ChatTemplateParityTest, Llama3MatchesReference) { CheckCases("llama3/"); }
TEST_F(ChatTemplateParityTest, Qwen3MatchesReference) { CheckCases("qwen3/"); }
TEST_F(ChatTemplateParityTest, Gemma3MatchesReference) { CheckCases("gemma3/"); }

TEST(ChatTemplateTest, GemmaRoleErrorNamesTheTemplateMessage) {
  ChatTemplateInputs in;
  in.messages = {{"user", "a", {}}, {"user", "b", {}}};
  Expected<std::string> got = RenderChatTemplate(TemplateOf("gemma3"), in);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("Conversation roles must alternate user/assistant/user/assistant/..."),
            std::string::npos)
      << got.status().message();
}

TEST(ChatTemplateTest, LoadsFromDirectoryConfigFileAndNamedList) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "fastgen_chat_template_load";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D{{ x }}"}]})";
  Expected<std::string> t = LoadChatTemplate(dir.string());
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(*t, "D{{ x }}");
  t = LoadChatTemplate((dir / "tokenizer_config.json").string());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "D{{ x }}");

  std::ofstream(dir / "chat_template.jinja") << "J";
  t = LoadChatTemplate(dir.string());  // the standalone file wins, as in transformers
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, "J");

  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": [{"name": "tool_use", "template": "T"}]})";
  fs::remove(dir / "chat_template.jinja");
  t = LoadChatTemplate(dir.string());
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tool_use"), std::string::npos);

  EXPECT_EQ(LoadChatTemplate((dir / "missing").string()).status().code(), ErrorCode::kNotFound);
  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": "<s>"})";
  EXPECT_EQ(LoadChatTemplate(dir.string()).status().code(), ErrorCode::kNotFound);
  std::ofstream(dir / "tokenizer_config.json") << "{not json";
  EXPECT_EQ(LoadChatTemplate(dir.string()).status().code(), ErrorCode::kCorruptFile);
  fs::remove_all(dir);
}

TEST(ChatTemplateTest, SharedConfigsHaveTemplates) {
  for (const char* model : {"llama3", "qwen3", "gemma3"}) {
    Expected<std::string> t = LoadChatTemplate(kShared + "/tokenizers/" + model + ".tokenizer_config.json");
    ASSERT_TRUE(t.ok()) << model << ": " << t.status().message();
    EXPECT_NE(t->find("messages"), std::string::npos);
  }
}

TEST(ChatTemplateTest, SyntaxErrorIsAValueWithLocation) {
  ChatTemplateInputs in;
  Expected<std::string> got = RenderChatTemplate("line one\n{% if x %}never closed", in);
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.status().message().find("line 2"), std::string::npos) << got.status().message();
  got = RenderChatTemplate("{{ x | no_such_filter }}", {});
  EXPECT_FALSE(got.ok());
}

TEST(ChatTemplateTest, ExtraContextAndMessageFieldsReachTheTemplate) {
  ChatTemplateInputs in;
  in.messages = {{"user", "hi", {{"name", "bob"}}}};
  in.extra_context = {{"custom", 3}};
  in.bos_token = "<s>";
  Expected<std::string> got = RenderChatTemplate(
      "{{ bos_token }}{% for m in messages %}{{ m.role }}:{{ m.name }}:{{ m.content }}{% endfor %}"
      "{{ custom * 2 }}{{ add_generation_prompt }}",
      in);
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(*got, "<s>user:bob:hi6true");
}

}  // namespace
}  // namespace fastgen

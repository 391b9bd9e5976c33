// `fastgen serve` end to end, as clients use it: the official openai npm client; 16 concurrent
// greedy requests returning what each returns alone; a hostile-request suite (malformed and
// truncated JSON, wrong types, huge and negative numbers, invalid UTF-8, a 10 MB body, slowloris
// headers, disconnects mid-stream, a burst of 500 requests against a small queue) after which the
// server still answers correctly and holds no KV block; SIGTERM draining in-flight requests.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "server/serve_process.h"
#include "test_util.h"

namespace fastgen {
namespace {

using nlohmann::json;
using testing::ServeProcess;
using testing::SharedPath;

std::string ModelDir() { return SharedPath("models/fg-target"); }

// The Llama 3 chat template (fg-target has none of its own).
std::string ChatTemplateFile() {
  const std::string path = testing::ScratchDir("fastgen_server_test") + "/llama3.jinja";
  std::ofstream(path) << testing::ReadJson(SharedPath("tokenizers/llama3.tokenizer_config.json"))["chat_template"].get<std::string>();
  return path;
}

httplib::Client Client(const ServeProcess& s, const std::string& key = "") {
  httplib::Client c(s.url());
  c.set_read_timeout(300, 0);
  if (!key.empty()) c.set_default_headers({{"Authorization", "Bearer " + key}});
  return c;
}

json Complete(httplib::Client& c, const json& body, int* status = nullptr) {
  auto r = c.Post("/v1/completions", body.dump(), "application/json");
  if (!r) return json{{"transport_error", httplib::to_string(r.error())}};
  if (status) *status = r->status;
  return json::parse(r->body, nullptr, false);
}

std::string GreedyText(httplib::Client& c, const std::string& prompt, int max_tokens) {
  const json j = Complete(c, {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}});
  if (!j.contains("choices")) return "<error " + j.dump() + ">";
  return j["choices"][0]["text"].get<std::string>();
}

// Metric `name` from /metrics.
double Metric(const ServeProcess& s, const std::string& name) {
  httplib::Client c(s.url());
  auto r = c.Get("/metrics");
  if (!r) return -1;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::atof(line.c_str() + name.size() + 1);
  return -1;
}

// Polls until the server holds no KV block and runs nothing (or 30 s pass).
void ExpectIdleWithoutBlocks(const ServeProcess& s) {
  double used = -1, running = -1;
  for (int i = 0; i < 600; ++i) {
    used = Metric(s, "fastgen_kv_blocks_used");
    running = Metric(s, "fastgen_sequences_running");
    if (used == 0 && running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(used, 0) << "KV blocks leaked";
  EXPECT_EQ(running, 0);
}

// A raw TCP connection, for what no well-behaved client does.
class RawSocket {
 public:
  explicit RawSocket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~RawSocket() { Close(); }
  bool connected() const { return connected_; }
  bool Send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // Up to n bytes, waiting at most timeout_ms; "" on EOF or timeout.
  std::string Recv(size_t n, int timeout_ms) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string buf(n, '\0');
    const ssize_t got = ::recv(fd_, buf.data(), n, 0);
    buf.resize(got > 0 ? static_cast<size_t>(got) : 0);
    last_recv_ = got;
    return buf;
  }
  ssize_t last_recv() const { return last_recv_; }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  ssize_t last_recv_ = 0;
};

std::string PostRequest(const std::string& path, const std::string& body) {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

// The copy of a test script beside the node_modules the install_node_references fixture made
// (Node resolves an ES module's imports from where the script is).
std::string NodeScript(const std::string& name) {
  // $FASTGEN_NODE_MODULES, else npm/node_modules in the working directory (ctest runs the
  // tests in the build tree, where the install_node_references fixture puts it).
  const char* env_modules = std::getenv("FASTGEN_NODE_MODULES");
  std::string modules = env_modules != nullptr ? env_modules : "";
  if (modules.empty() && std::filesystem::is_directory("npm/node_modules/openai"))
    modules = std::filesystem::absolute("npm/node_modules").string();
  if (modules.empty()) return "";
  const std::string script = modules + "/../" + name;
  std::filesystem::copy_file(std::string(FASTGEN_SOURCE_DIR) + "/tests/server/" + name, script,
                             std::filesystem::copy_options::overwrite_existing);
  return script;
}

// Every completed answer under response_format json_schema validates under the schema, checked
// by Ajv through the official client (tests/server/structured_output.mjs).
TEST(Serve, StructuredOutputValidatesUnderAjv) {
  const std::string script = NodeScript("structured_output.mjs");
  ASSERT_FALSE(script.empty()) << "the openai and ajv npm packages are installed by the install_node_references ctest fixture";
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--parallel", "8", "--chat-template", ChatTemplateFile()});
  ASSERT_GT(s.port(), 0);
  const std::string out = testing::ScratchDir("fastgen_server_test") + "/structured_output.out";
  const std::string cmd = "node " + script + " " + s.url() + "/v1 fg-target >" + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << testing::ReadFileText(out) << "\nserver log:\n" << s.Log();
}

// A template that writes Hermes-style calls (Qwen 3's: it shows the tools and asks for
// <tool_call> blocks): a forced call comes back as tool_calls, and the call and its result render
// as history.
// One tool: lookup(id: integer 0..99).
json LookupTool() {
  return json::array({{{"type", "function"},
                       {"function",
                        {{"name", "lookup"},
                         {"parameters",
                          {{"type", "object"},
                           {"properties", {{"id", {{"type", "integer"}, {"minimum", 0}, {"maximum", 99}}}}},
                           {"required", {"id"}}}}}}}});
}

TEST(Serve, ToolCallsInTheTemplatesSyntax) {
  const std::string tmpl = testing::ScratchDir("fastgen_server_test") + "/qwen3.jinja";
  std::ofstream(tmpl) << testing::ReadJson(SharedPath("tokenizers/qwen3.tokenizer_config.json"))["chat_template"].get<std::string>();
  ServeProcess s({"-m", ModelDir(), "-t", "1", "--chat-template", tmpl});
  auto c = Client(s);
  const json tools = LookupTool();
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Find 7"}}})},
               {"tools", tools}, {"tool_choice", "required"}, {"parallel_tool_calls", false},
               {"temperature", 0}, {"max_tokens", 64}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json answer = json::parse(r->body);
  const json& msg = answer["choices"][0]["message"];
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "tool_calls") << r->body;
  ASSERT_TRUE(msg["tool_calls"].is_array()) << r->body;
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "lookup");
  const json args = json::parse(msg["tool_calls"][0]["function"]["arguments"].get<std::string>());
  EXPECT_TRUE(args["id"].is_number_integer() && args["id"] >= 0 && args["id"] <= 99) << args.dump();
  body["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", msg["tool_calls"]}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", msg["tool_calls"][0]["id"]}, {"content", "found"}});
  body["tool_choice"] = "auto";
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

// A Mistral-style template: calls as [TOOL_CALLS] and an array, and ids of 9 letters and digits
// or the template refuses the history (as Mistral's own templates do).
TEST(Serve, ToolCallsInMistralsSyntax) {
  const std::string tmpl = testing::ScratchDir("fastgen_server_test") + "/mistral_tools.jinja";
  std::ofstream(tmpl) << R"({{- bos_token }}{%- for message in messages %}{%- if message.role == 'user' %})"
                         R"({%- if tools and loop.last %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{%- endif %})"
                         R"([INST]{{ message.content }}[/INST]{%- elif message.tool_calls %}[TOOL_CALLS][)"
                         R"({%- for tc in message.tool_calls %}{%- if tc.id | length != 9 %})"
                         R"({{ raise_exception('Tool call IDs should be alphanumeric strings with length 9!') }}{%- endif %})"
                         R"({{ {'name': tc.function.name, 'arguments': tc.function.arguments, 'id': tc.id} | tojson }})"
                         R"({%- if not loop.last %}, {% endif %}{%- endfor %}]{{ eos_token }})"
                         R"({%- elif message.role == 'tool' %}[TOOL_RESULTS]{{ message.content }}[/TOOL_RESULTS])"
                         R"({%- else %}{{ message.content }}{{ eos_token }}{%- endif %}{%- endfor %})";
  ServeProcess s({"-m", ModelDir(), "-t", "1", "--chat-template", tmpl});
  auto c = Client(s);
  const json tools = LookupTool();
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "Find 7"}}})},
               {"tools", tools}, {"tool_choice", "required"}, {"temperature", 0}, {"max_tokens", 64}};
  auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json answer = json::parse(r->body);
  const json& msg = answer["choices"][0]["message"];
  EXPECT_EQ(answer["choices"][0]["finish_reason"], "tool_calls") << r->body;
  ASSERT_TRUE(msg["tool_calls"].is_array() && !msg["tool_calls"].empty()) << r->body;
  const std::string id = msg["tool_calls"][0]["id"];
  EXPECT_EQ(id.size(), 9u) << id;
  EXPECT_EQ(msg["tool_calls"][0]["function"]["name"], "lookup");
  // The call goes back as history and the template takes its id.
  body["messages"].push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", msg["tool_calls"]}});
  body["messages"].push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", "found"}});
  body["tool_choice"] = "auto";
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  // An id of another shape is what the template refuses: a client error, not a crash.
  body["messages"][1]["tool_calls"][0]["id"] = "call_0123456789abcdef0123";
  r = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

// Bad structured-output requests get a 400 naming the parameter; the server keeps serving.
TEST(Serve, BadStructuredOutputRequestsAreRefused) {
  ServeProcess s({"-m", ModelDir(), "-t", "1", "--chat-template", ChatTemplateFile()});
  auto c = Client(s);
  const json base = {{"prompt", "x"}, {"max_tokens", 2}};
  struct Case {
    json extra;
    const char* param;
    const char* message;
  } cases[] = {
      {{{"response_format", {{"type", 7}}}}, "response_format", "string \"type\""},
      {{{"response_format", {{"type", "xml"}}}}, "response_format", "not one of"},
      {{{"response_format", {{"type", "json_schema"}}}}, "response_format", "json_schema"},
      {{{"response_format", {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {{"type", "strng"}}}}}}}},
       "response_format", "strng"},
      {{{"response_format",
         {{"type", "json_schema"}, {"json_schema", {{"name", "x"}, {"schema", {{"$ref", "#/$defs/missing"}}}}}}}},
       "response_format", "missing"},
      {{{"grammar", "root ::= undefined-rule"}}, "grammar", "never defined"},
      {{{"grammar", 5}}, "grammar", "GBNF"},
      {{{"grammar", "root ::= \"a\""}, {"response_format", {{"type", "json_object"}}}}, "grammar", "not both"},
  };
  for (const Case& k : cases) {
    json body = base;
    for (const auto& [key, value] : k.extra.items()) body[key] = value;
    int status = 0;
    const json r = Complete(c, body, &status);
    EXPECT_EQ(status, 400) << body.dump() << " -> " << r.dump();
    EXPECT_EQ(r["error"]["param"], k.param) << r.dump();
    EXPECT_NE(r["error"]["message"].get<std::string>().find(k.message), std::string::npos) << r.dump();
  }
  // Tools: completions refuse them; chat checks their shape.
  {
    json body = base;
    body["tools"] = json::array({{{"type", "function"}, {"function", {{"name", "f"}}}}});
    int status = 0;
    const json r = Complete(c, body, &status);
    EXPECT_EQ(status, 400) << r.dump();
    EXPECT_EQ(r["error"]["param"], "tools") << r.dump();
  }
  const json messages = json::array({{{"role", "user"}, {"content", "hi"}}});
  const json fn = {{"type", "function"}, {"function", {{"name", "f"}, {"parameters", {{"type", "object"}}}}}};
  struct ChatCase {
    json extra;
    const char* param;
  } chat_cases[] = {
      {{{"tools", json::array({{{"type", "function"}}})}}, "tools"},
      {{{"tools", json::array({{{"type", "function"}, {"function", {{"name", "bad name!"}}}}})}}, "tools"},
      {{{"tools", json::array({fn, fn})}}, "tools"},
      {{{"tools", json::array({{{"type", "function"}, {"function", {{"name", "g"}, {"parameters", {{"not", {}}}}}}}})},
        {"tool_choice", "required"}},
       "tools"},
      {{{"tools", json::array({fn})}, {"tool_choice", "sometimes"}}, "tool_choice"},
      {{{"tools", json::array({fn})}, {"tool_choice", {{"type", "function"}, {"function", {{"name", "g"}}}}}}, "tool_choice"},
      {{{"tool_choice", "required"}}, "tool_choice"},
      {{{"tools", json::array({fn})}, {"tool_choice", "required"}, {"response_format", {{"type", "json_object"}}}},
       "tool_choice"},
  };
  for (const ChatCase& k : chat_cases) {
    json body = {{"messages", messages}, {"max_tokens", 2}};
    for (const auto& [key, value] : k.extra.items()) body[key] = value;
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << body.dump() << " -> " << r->body;
    EXPECT_EQ(json::parse(r->body)["error"]["param"], k.param) << r->body;
  }
  int status = 0;
  json ok = base;
  ok["grammar"] = "root ::= \"ab\"";
  ok["max_tokens"] = 8;
  const json r = Complete(c, ok, &status);
  EXPECT_EQ(status, 200) << r.dump();
  EXPECT_EQ(r["choices"][0]["text"], "ab") << r.dump();
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop") << r.dump();
}

TEST(Serve, OfficialOpenAiClient) {
  // $FASTGEN_NODE_MODULES, else npm/node_modules in the working directory (ctest runs the
  // tests in the build tree, where the install_node_references fixture puts it).
  const char* env_modules = std::getenv("FASTGEN_NODE_MODULES");
  std::string modules = env_modules != nullptr ? env_modules : "";
  if (modules.empty() && std::filesystem::is_directory("npm/node_modules/openai"))
    modules = std::filesystem::absolute("npm/node_modules").string();
  ASSERT_FALSE(modules.empty()) << "the openai npm package is installed by the install_node_references ctest fixture";
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--chat-template", ChatTemplateFile(), "--api-key", "test-key"});
  ASSERT_GT(s.port(), 0);
  // Node resolves an ES module's imports from where the script is: a copy of it beside the
  // installed node_modules finds `openai`.
  const std::string script = modules + "/../openai_client.mjs";
  std::filesystem::copy_file(std::string(FASTGEN_SOURCE_DIR) + "/tests/server/openai_client.mjs", script,
                             std::filesystem::copy_options::overwrite_existing);
  const std::string out = testing::ScratchDir("fastgen_server_test") + "/openai_client.out";
  const std::string cmd = "node " + script + " " + s.url() + "/v1 test-key fg-target >" + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << testing::ReadFileText(out) << "\nserver log:\n" << s.Log();
}

std::vector<std::string> CorpusPrompts(int count, uint32_t seed) {
  const std::string corpus = testing::ReadFileText(SharedPath("corpus/valid.txt"));
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    const size_t len = 30 + rng() % 1500;
    size_t at = rng() % (corpus.size() - len);
    while (at > 0 && (static_cast<unsigned char>(corpus[at]) & 0xC0) == 0x80) --at;  // start on a character
    std::string p = corpus.substr(at, len);
    while (!p.empty() && (static_cast<unsigned char>(p.back()) & 0x80)) p.pop_back();  // and end on one
    out.push_back(p);
  }
  return out;
}

TEST(Serve, SixteenConcurrentGreedyRequestsMatchEachAlone) {
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--parallel", "16"});
  auto c = Client(s);
  const auto prompts = CorpusPrompts(16, 21);
  std::vector<std::string> alone;
  for (const auto& p : prompts) alone.push_back(GreedyText(c, p, 32));
  std::vector<std::string> together(prompts.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i)
    threads.emplace_back([&, i] {
      auto ci = Client(s);
      together[i] = GreedyText(ci, prompts[i], 32);
    });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i], alone[i]) << "request " << i;
  ExpectIdleWithoutBlocks(s);
}

TEST(Serve, HostileRequestsGetTheirStatusAndTheServerKeepsServing) {
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--parallel", "8", "--max-queue", "8", "--read-timeout", "2"});
  auto c = Client(s);
  const std::string reference = GreedyText(c, "def main():", 16);
  auto expect = [&](const std::string& body, int status, const std::string& param, const std::string& path = "/v1/completions") {
    auto r = c.Post(path, body, "application/json");
    ASSERT_TRUE(r) << body.substr(0, 80);
    EXPECT_EQ(r->status, status) << body.substr(0, 200) << " -> " << r->body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    if (!param.empty()) {
      EXPECT_EQ(j["error"]["param"], param) << r->body;
    }
  };
  // Malformed, truncated, not an object.
  expect("{\"prompt\": \"x\"", 400, "");
  expect("{\"prom", 400, "");
  expect("", 400, "");
  expect("[1, 2]", 400, "");
  expect("42", 400, "");
  expect(std::string(300000, '[') + std::string(300000, ']'), 400, "");  // deep nesting
  // Wrong types.
  expect(R"({"prompt": 5})", 400, "prompt");
  expect(R"({"prompt": "x", "temperature": "hot"})", 400, "temperature");
  expect(R"({"prompt": "x", "n": 1.5})", 400, "n");
  expect(R"({"prompt": "x", "stream": "yes"})", 400, "stream");
  expect(R"({"prompt": "x", "stop": [1]})", 400, "stop");
  expect(R"({"prompt": "x", "logit_bias": {"abc": 1}})", 400, "logit_bias");
  expect(R"({"prompt": "x", "model": 7})", 400, "model");
  expect(R"({"prompt": [1, 2, 99999999]})", 400, "prompt");
  expect(R"({"prompt": [[1, 2], "x", {}]})", 400, "prompt");
  // Huge and negative numbers.
  expect(R"({"prompt": "x", "max_tokens": 1e30})", 400, "max_tokens");
  expect(R"({"prompt": "x", "max_tokens": 18446744073709551615})", 400, "max_tokens");
  expect(R"({"prompt": "x", "max_tokens": -1})", 400, "max_tokens");
  expect(R"({"prompt": "x", "max_tokens": 100000})", 400, "max_tokens");
  expect(R"({"prompt": "x", "n": 0})", 400, "n");
  expect(R"({"prompt": "x", "n": 1000})", 400, "n");
  expect(R"({"prompt": "x", "top_k": -1})", 400, "top_k");
  expect(R"({"prompt": "x", "temperature": -1})", 400, "temperature");
  expect(R"({"prompt": "x", "top_p": 0})", 400, "top_p");
  expect(R"({"prompt": "x", "logprobs": 99})", 400, "logprobs");
  // Invalid UTF-8 inside a string.
  expect("{\"prompt\": \"caf\xe9\"}", 400, "");
  expect("{\"prompt\": \"\xc0\xaf\"}", 400, "");
  // Chat without a template, unknown endpoint, wrong method.
  expect(R"({"messages": [{"role": "user", "content": "hi"}]})", 400, "messages", "/v1/chat/completions");
  {
    auto r = c.Get("/v1/completions");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    auto nf = c.Get("/v1/nothing");
    ASSERT_TRUE(nf);
    EXPECT_EQ(nf->status, 404);
    EXPECT_TRUE(json::parse(nf->body, nullptr, false).contains("error"));
  }
  // A 10 MB body.
  {
    const std::string big = "{\"prompt\": \"" + std::string(10u << 20, 'a') + "\"}";
    auto r = c.Post("/v1/completions", big, "application/json");
    if (r) {
      EXPECT_EQ(r->status, 413);  // or the server closes the connection mid-upload: both refuse it
    }
  }
  EXPECT_EQ(GreedyText(c, "def main():", 16), reference);

  // Slowloris: connections that send their headers a byte at a time hold no one up, and are
  // dropped after the read timeout.
  {
    std::vector<std::unique_ptr<RawSocket>> slow;
    for (int i = 0; i < 12; ++i) {
      slow.push_back(std::make_unique<RawSocket>(s.port()));
      ASSERT_TRUE(slow.back()->connected());
      slow.back()->Send("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    }
    EXPECT_EQ(GreedyText(c, "def main():", 16), reference);  // served meanwhile
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    // Dropped: closed, or closed after an error reply (408 / 400), never served on.
    for (auto& sock : slow) {
      sock->Send("a");
      std::string got = sock->Recv(4096, 2000);
      if (sock->last_recv() > 0) {
        EXPECT_EQ(got.rfind("HTTP/1.1 4", 0), 0u) << got;
        sock->Recv(4096, 2000);
        EXPECT_LE(sock->last_recv(), 0) << "a slowloris connection was kept open";
      }
    }
  }
  // Disconnects mid-stream cancel their sequences: no block stays in use.
  for (int i = 0; i < 6; ++i) {
    RawSocket sock(s.port());
    ASSERT_TRUE(sock.connected());
    sock.Send(PostRequest("/v1/completions", R"({"prompt": "def f(x):", "max_tokens": 1500, "stream": true, "ignore_eos": true})"));
    std::string got;
    for (int k = 0; k < 50 && got.find("data:") == std::string::npos; ++k) got += sock.Recv(4096, 500);
    EXPECT_NE(got.find("data:"), std::string::npos);
    sock.Close();
  }
  // A non-streaming client that hangs up is cancelled too.
  {
    RawSocket sock(s.port());
    sock.Send(PostRequest("/v1/completions", R"({"prompt": "def f(x):", "max_tokens": 1500, "ignore_eos": true})"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    sock.Close();
  }
  ExpectIdleWithoutBlocks(s);

  // A burst of 500 requests against --max-queue 8: each one gets 200 with the right text, or 503
  // with Retry-After, or is dropped (the connection closes unanswered: a few, under this load,
  // with cpp-httplib's client); never a wrong answer or another status.
  std::atomic<int> ok{0}, busy{0}, wrong{0}, dropped{0};
  std::atomic<int> next{0};
  std::mutex first_wrong_mu;
  std::string first_wrong;
  auto note = [&](const std::string& what) {
    ++wrong;
    std::lock_guard<std::mutex> lock(first_wrong_mu);
    if (first_wrong.empty()) first_wrong = what;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t)
    threads.emplace_back([&] {
      // Persistent connections, as real clients keep them (cpp-httplib 0.11's client, asked to
      // close each connection, loses a few fast replies under this load: curl does not, here).
      httplib::Client ci(s.url());
      ci.set_read_timeout(300, 0);
      ci.set_keep_alive(true);
      for (int i = next++; i < 500; i = next++) {
        auto r = ci.Post("/v1/completions", json{{"prompt", "def main():"}, {"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true}}.dump(),
                         "application/json");
        if (r && r->status == 200) {
          const json j = json::parse(r->body, nullptr, false);
          if (j.contains("choices") && j["choices"][0]["text"] == reference) {
            ++ok;
          } else {
            note("200 with " + r->body);
          }
        } else if (r && r->status == 503 && r->has_header("Retry-After")) {
          ++busy;
        } else if (!r && r.error() == httplib::Error::Read) {
          ++dropped;
        } else {
          note(r ? "HTTP " + std::to_string(r->status) + " " + r->body : "transport: " + httplib::to_string(r.error()));
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0) << first_wrong;
  EXPECT_EQ(ok + busy + dropped, 500);
  EXPECT_LT(dropped.load(), 50);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(busy.load(), 0) << "a burst of 500 against --max-queue 8 should be turned away in part";
  EXPECT_EQ(GreedyText(c, "def main():", 16), reference);
  ExpectIdleWithoutBlocks(s);
}

TEST(Serve, AuthenticationIsRequiredWhenAKeyIsSet) {
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--api-key", "sekret"});
  httplib::Client anon(s.url());
  auto r = anon.Post("/v1/completions", R"({"prompt": "x", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "authentication_error");
  auto wrong = Client(s, "sekret2");
  auto rw = wrong.Post("/v1/completions", R"({"prompt": "x", "max_tokens": 2})", "application/json");
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->status, 401);
  auto good = Client(s, "sekret");
  int status = 0;
  Complete(good, {{"prompt", "x"}, {"max_tokens", 2}}, &status);
  EXPECT_EQ(status, 200);
  auto health = anon.Get("/health");  // open, for load balancers
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

// Keys fastgen does not implement, set to values that would change the answer, are refused
// naming the key instead of answered as if absent; their neutral values pass.
TEST(Serve, UnsupportedOutputChangingKeysAreRefused) {
  ServeProcess s({"-m", ModelDir(), "-t", "1", "--chat-template", ChatTemplateFile()});
  auto c = Client(s);
  const json base = {{"prompt", "x"}, {"max_tokens", 2}};
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{
           {"echo", true},
           {"suffix", "tail"},
           {"best_of", 3},
           {"functions", json::array({{{"name", "f"}}})}}) {
    json body = base;
    body[key] = value;
    int status = 0;
    const json r = Complete(c, body, &status);
    EXPECT_EQ(status, 400) << key << ": " << r.dump();
    EXPECT_EQ(r["error"]["param"], key) << r.dump();
    EXPECT_EQ(r["error"]["code"], "unsupported_parameter") << r.dump();
  }
  for (const auto& [key, value] : std::vector<std::pair<std::string, json>>{{"echo", false},
                                                                           {"suffix", ""},
                                                                           {"best_of", 1},
                                                                           {"tools", json::array()},
                                                                           {"response_format", {{"type", "text"}}},
                                                                           {"metadata", {{"a", "b"}}}}) {
    json body = base;
    body[key] = value;
    int status = 0;
    const json r = Complete(c, body, &status);
    EXPECT_EQ(status, 200) << key << ": " << r.dump();
  }
  // The same rule on the chat endpoint.
  int status = 0;
  auto r = c.Post("/v1/chat/completions",
                  json{{"messages", {{{"role", "user"}, {"content", "hi"}}}},
                       {"max_tokens", 2},
                       {"functions", json::array({{{"name", "f"}}})}}
                      .dump(),
                  "application/json");
  ASSERT_TRUE(r);
  status = r->status;
  EXPECT_EQ(status, 400) << r->body;
}

// A second server on a port that is listened on fails with a message instead of sharing it; a
// server restarted on the port of one that just stopped binds at once, although the old one's
// connections linger in TIME_WAIT.
TEST(Serve, APortInUseIsRefusedAndARestartRebindsAtOnce) {
  int port = 0;
  {
    ServeProcess first({"-m", ModelDir(), "-t", "1"});
    port = first.port();
    ASSERT_GT(port, 0);
    // A kept-alive connection that the server closes when it stops: TIME_WAIT on its port.
    auto c = Client(first);
    c.set_keep_alive(true);
    int status = 0;
    Complete(c, {{"prompt", "x"}, {"max_tokens", 2}}, &status);
    EXPECT_EQ(status, 200);
    ServeProcess second({"-m", ModelDir(), "-t", "1"}, port, /*expect_start=*/false);
    EXPECT_EQ(second.port(), 0) << "two servers listen on port " << port << ":\n" << second.Log();
    EXPECT_TRUE(second.exited());
    EXPECT_NE(second.Log().find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
        << second.Log();
    EXPECT_EQ(first.Terminate(), 0) << first.Log();
  }
  ServeProcess restarted({"-m", ModelDir(), "-t", "1"}, port);
  EXPECT_EQ(restarted.port(), port) << restarted.Log();
}

TEST(Serve, SigtermDrainsRequestsInFlightAndExitsZero) {
  ServeProcess s({"-m", ModelDir(), "-t", "2"});
  json result;
  std::thread client([&] {
    auto c = Client(s);
    result = Complete(c, {{"prompt", "def f(x):"}, {"max_tokens", 300}, {"ignore_eos", true}, {"temperature", 0}});
  });
  // Wait until it runs, then ask the server to stop.
  for (int i = 0; i < 200 && Metric(s, "fastgen_sequences_running") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(s.Terminate(), 0) << s.Log();
  client.join();
  ASSERT_TRUE(result.contains("choices")) << result.dump();
  EXPECT_EQ(result["usage"]["completion_tokens"], 300);
  EXPECT_EQ(result["choices"][0]["finish_reason"], "length");
}

// 32 concurrent streams, a third of them hanging up at a random point, for a bounded time; then
// no block is held and the server answers correctly. (CI runs it under AddressSanitizer too.)
TEST(Serve, SoakWithRandomDisconnects) {
  ServeProcess s({"-m", ModelDir(), "-t", "2", "--parallel", "32"});
  auto c = Client(s);
  const std::string reference = GreedyText(c, "class Foo:", 12);
  const int seconds = std::getenv("FASTGEN_SOAK_SECONDS") ? std::atoi(std::getenv("FASTGEN_SOAK_SECONDS")) : 15;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::atomic<int> completed{0}, dropped{0}, errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<uint32_t>(t));
      while (std::chrono::steady_clock::now() < deadline) {
        const int max_tokens = 8 + static_cast<int>(rng() % 64);
        const bool hang_up = rng() % 3 == 0;
        RawSocket sock(s.port());
        if (!sock.connected()) {
          ++errors;
          continue;
        }
        sock.Send(PostRequest("/v1/completions", json{{"prompt", "def f" + std::to_string(rng() % 1000) + "(x):"},
                                                      {"max_tokens", max_tokens}, {"stream", true}, {"temperature", 0.7},
                                                      {"seed", rng() % 100}}.dump()));
        std::string got;
        const size_t cut = 200 + rng() % 2000;
        while (got.find("[DONE]") == std::string::npos && (!hang_up || got.size() < cut)) {
          const std::string part = sock.Recv(4096, 30000);
          if (part.empty()) break;
          got += part;
        }
        if (got.find("[DONE]") != std::string::npos) {
          ++completed;
        } else if (hang_up) {
          ++dropped;
        } else {
          ++errors;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(completed.load(), 0);
  ExpectIdleWithoutBlocks(s);
  EXPECT_EQ(GreedyText(c, "class Foo:", 12), reference);
}

}  // namespace
}  // namespace fastgen

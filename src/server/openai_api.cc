#include "server/openai_api.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <set>

#include "core/diagnostics.h"
#include "decoding/constrained/output_format.h"
#include "server/tool_calls.h"
#include "tokenizer/chat_template.h"

namespace fastgen::server {
namespace {

using nlohmann::json;

// The keys fastgen reads; others are reported as ignored.
const std::set<std::string>& KnownKeys() {
  static const std::set<std::string> keys = {
      "model", "prompt", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
      "temperature", "top_p", "top_k", "min_p", "n", "stop", "seed", "presence_penalty", "frequency_penalty",
      "repeat_penalty", "repeat_last_n", "logit_bias", "logprobs", "top_logprobs", "user", "ignore_eos",
      "skip_special_tokens", "response_format", "grammar", "tools", "tool_choice", "parallel_tool_calls"};
  return keys;
}

// Keys fastgen does not implement whose values, when set, would change the answer: refused with
// a 400 naming the key rather than answered as if they were absent. Other unknown keys
// (metadata, store, ...) are ignored with a warning in the server's log.
std::string UnsupportedSetting(const json& j) {
  auto set = [&j](const char* key) { return j.contains(key) && !j[key].is_null(); };
  if (set("echo") && j["echo"] != false) return "echo";
  if (set("suffix") && j["suffix"] != "") return "suffix";
  if (set("best_of")) {
    const json n = j.contains("n") && !j["n"].is_null() ? j["n"] : json(1);
    if (j["best_of"] != 1 && j["best_of"] != n) return "best_of";
  }
  if (set("functions") && !(j["functions"].is_array() && j["functions"].empty())) return "functions";  // the legacy API
  return "";
}

// A 400 naming `param`; false, for `return InvalidValue(...)` from a parser.
bool InvalidValue(ApiError* error, const char* param, const std::string& message) {
  error->status = 400;
  error->param = param;
  error->message = message;
  error->code = "invalid_value";
  return false;
}

// response_format ({"type": "text" | "json_object" | "json_schema", "json_schema": {"name",
// "schema", "strict"}}) and llama.cpp's "grammar" (GBNF text) into the grammar that constrains
// the output. The schema is read again from the body with its key order kept: properties are
// generated in the order the schema declares them, which nlohmann::json (sorted keys) loses.
bool ParseOutputFormat(const std::string& body, const json& j, const ApiContext& ctx, ApiError* error,
                       runtime::GenerationParams* p) {
  auto fail = [error](const char* param, const std::string& message) { return InvalidValue(error, param, message); };
  constrained::OutputFormat format;
  const char* param = "response_format";
  if (j.contains("response_format") && !j["response_format"].is_null()) {
    const json& rf = j["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
      return fail(param, "response_format: expected an object with a string \"type\"");
    const std::string type = rf["type"].get<std::string>();
    if (type == "json_object") {
      format.kind = constrained::OutputFormat::Kind::kJsonObject;
    } else if (type == "json_schema") {
      if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
        return fail(param, "response_format.json_schema: expected an object with \"name\" and \"schema\"");
      const json& js = rf["json_schema"];
      if (js.contains("name") && !js["name"].is_string()) return fail(param, "response_format.json_schema.name: expected a string");
      if (js.contains("strict") && !js["strict"].is_boolean() && !js["strict"].is_null())
        return fail(param, "response_format.json_schema.strict: expected a boolean");
      if (!js.contains("schema") || js["schema"].is_null()) {
        format.kind = constrained::OutputFormat::Kind::kJsonObject;  // a schema-less json_schema: any object
      } else {
        if (!js["schema"].is_object() && !js["schema"].is_boolean())
          return fail(param, "response_format.json_schema.schema: expected a JSON Schema object");
        const auto ordered = nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
        format.kind = constrained::OutputFormat::Kind::kJsonSchema;
        format.text = ordered["response_format"]["json_schema"]["schema"].dump();
        // strict: true, as OpenAI reads it: objects have exactly their declared properties.
        format.closed_objects = js.contains("strict") && js["strict"] == true;
      }
    } else if (type != "text") {
      return fail(param, "response_format.type: '" + type.substr(0, 64) + "' is not one of text, json_object, json_schema");
    }
  }
  if (j.contains("grammar") && !j["grammar"].is_null()) {
    if (!j["grammar"].is_string()) return fail("grammar", "grammar: expected GBNF text");
    if (format.kind != constrained::OutputFormat::Kind::kText)
      return fail("grammar", "grammar: give either grammar or a JSON response_format, not both");
    format.kind = constrained::OutputFormat::Kind::kGrammar;
    format.text = j["grammar"].get<std::string>();
    param = "grammar";
  }
  auto grammar = ctx.output_formats ? ctx.output_formats->Compile(format) : constrained::CompileOutputFormat(format);
  if (!grammar.ok()) {
    const bool ours = grammar.status().code() == ErrorCode::kInternal;
    error->status = ours ? 500 : 400;
    error->type = ours ? "server_error" : "invalid_request_error";
    error->param = param;
    error->message = std::string(param) + ": " + grammar.status().message();
    error->code = ours ? "" : "invalid_value";
    return false;
  }
  p->grammar = std::move(*grammar);
  return true;
}

// tools, tool_choice and parallel_tool_calls (chat completions): the tools' specs, and for a
// forced call ("required" or a named function) the grammar of the call in the template's syntax.
bool ParseTools(const std::string& body, const json& j, const ApiContext& ctx, ApiError* error, ApiRequest* out,
                runtime::GenerationParams* p) {
  auto fail = [error](const char* param, const std::string& message) { return InvalidValue(error, param, message); };
  const bool has_tools = j.contains("tools") && !j["tools"].is_null();
  if (!has_tools) {
    if (j.contains("tool_choice") && !j["tool_choice"].is_null() && j["tool_choice"] != "none" && j["tool_choice"] != "auto")
      return fail("tool_choice", "tool_choice: no tools were given");
    return true;
  }
  const json& tools = j["tools"];
  if (!tools.is_array() || tools.size() > 128) return fail("tools", "tools: expected an array of up to 128 tools");
  if (tools.empty()) return true;
  out->tools_json = nlohmann::ordered_json::parse(body, nullptr, false)["tools"];
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = "tools[" + std::to_string(i) + "]";
    const json& t = tools[i];
    if (!t.is_object() || t.value("type", "") != "function" || !t.contains("function") || !t["function"].is_object())
      return fail("tools", where + ": expected {\"type\": \"function\", \"function\": {...}}");
    const json& f = t["function"];
    if (!f.contains("name") || !f["name"].is_string()) return fail("tools", where + ".function.name: expected a string");
    const std::string name = f["name"].get<std::string>();
    const bool valid_name = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
    if (!valid_name) return fail("tools", where + ".function.name: 1 to 64 of a-z, A-Z, 0-9, _ and -");
    for (const ToolSpec& seen : out->tools)
      if (seen.name == name) return fail("tools", where + ".function.name: '" + name + "' is given twice");
    ToolSpec spec{name, {{"type", "object"}}};
    const auto& of = out->tools_json[i]["function"];
    if (of.contains("parameters") && !of["parameters"].is_null()) {
      if (!of["parameters"].is_object()) return fail("tools", where + ".function.parameters: expected a JSON Schema object");
      spec.parameters = of["parameters"];
    }
    out->tools.push_back(std::move(spec));
  }
  bool parallel = true;
  if (j.contains("parallel_tool_calls") && !j["parallel_tool_calls"].is_null()) {
    if (!j["parallel_tool_calls"].is_boolean()) return fail("parallel_tool_calls", "parallel_tool_calls: expected a boolean");
    parallel = j["parallel_tool_calls"].get<bool>();
  }
  std::string forced;
  out->tool_mode = ToolMode::kAuto;
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const json& tc = j["tool_choice"];
    if (tc == "none") {
      out->tool_mode = ToolMode::kNone;
    } else if (tc == "required") {
      out->tool_mode = ToolMode::kForced;
    } else if (tc.is_object() && tc.value("type", "") == "function" && tc.contains("function") &&
               tc["function"].is_object() && tc["function"].contains("name") && tc["function"]["name"].is_string()) {
      forced = tc["function"]["name"].get<std::string>();
      if (std::none_of(out->tools.begin(), out->tools.end(), [&](const ToolSpec& t) { return t.name == forced; }))
        return fail("tool_choice", "tool_choice: no tool named '" + forced.substr(0, 64) + "'");
      out->tool_mode = ToolMode::kForced;
    } else if (tc != "auto") {
      return fail("tool_choice", "tool_choice: expected \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\"}}");
    }
  }
  out->tool_syntax = ToolCallSyntaxOf(ctx.chat_template ? *ctx.chat_template : std::string());
  const auto compile = [&](const std::string& gbnf) {
    constrained::OutputFormat format;
    format.kind = constrained::OutputFormat::Kind::kGrammar;
    format.text = gbnf;
    format.root = kToolCallRoot;
    return ctx.output_formats ? ctx.output_formats->Compile(format) : constrained::CompileOutputFormat(format);
  };
  if (out->tool_mode == ToolMode::kAuto && !p->grammar) {
    // The model writes freely; a call it opens follows the tools' schemas (a lazy grammar).
    auto lazy = ToolCallLazyGbnf(out->tools, out->tool_syntax);
    if (!lazy.ok()) return fail("tools", lazy.status().message());
    if (lazy->trigger.empty()) return true;
    auto grammar = compile(lazy->gbnf);
    if (!grammar.ok()) return fail("tools", "tools: " + grammar.status().message());
    p->grammar = std::move(*grammar);
    p->grammar_trigger = lazy->trigger;
    return true;
  }
  if (out->tool_mode != ToolMode::kForced) return true;
  if (p->grammar) return fail("tool_choice", "tool_choice: a forced tool call does not combine with response_format or grammar");
  auto gbnf = ToolCallGbnf(out->tools, forced, parallel, out->tool_syntax);
  if (!gbnf.ok()) return fail("tools", gbnf.status().message());
  auto grammar = compile(*gbnf);
  if (!grammar.ok()) return fail("tools", "tools: " + grammar.status().message());
  p->grammar = std::move(*grammar);
  return true;
}

// Typed reads of the request object: each failure names the parameter.
class Fields {
 public:
  Fields(const json& j, ApiError* error) : j_(j), error_(error) {}

  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  bool Fail(const char* param, const std::string& message) {
    error_->status = 400;
    error_->param = param;
    error_->message = message;
    error_->code = "invalid_value";
    return false;
  }

  // A number in [lo, hi] (lo excluded when lo_open), when present.
  bool Number(const char* key, double lo, double hi, float* out, bool lo_open = false) {
    if (!Has(key)) return true;
    const json& v = j_[key];
    if (!v.is_number()) return Fail(key, std::string(key) + ": expected a number, got " + TypeName(v));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d > hi || d < lo || (lo_open && d == lo))
      return Fail(key, std::string(key) + ": " + v.dump() + " is outside " + (lo_open ? "(" : "[") + Short(lo) + ", " +
                           Short(hi) + "]");
    *out = static_cast<float>(d);
    return true;
  }

  bool Integer(const char* key, int64_t lo, int64_t hi, int64_t* out) {
    if (!Has(key)) return true;
    const json& v = j_[key];
    if (!v.is_number_integer())
      return Fail(key, std::string(key) + ": expected an integer, got " + (v.is_number() ? v.dump() : TypeName(v)));
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return Fail(key, std::string(key) + ": " + v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    const int64_t i = v.get<int64_t>();
    if (i < lo || i > hi)
      return Fail(key, std::string(key) + ": " + std::to_string(i) + " is outside [" + std::to_string(lo) + ", " +
                           std::to_string(hi) + "]");
    *out = i;
    return true;
  }

  bool Bool(const char* key, bool* out) {
    if (!Has(key)) return true;
    if (!j_[key].is_boolean()) return Fail(key, std::string(key) + ": expected true or false, got " + TypeName(j_[key]));
    *out = j_[key].get<bool>();
    return true;
  }

  static std::string TypeName(const json& v) {
    if (v.is_string()) return "a string";
    if (v.is_boolean()) return "a boolean";
    if (v.is_array()) return "an array";
    if (v.is_object()) return "an object";
    if (v.is_null()) return "null";
    return "a number";
  }

 private:
  static std::string Short(double v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v);
    return buf;
  }
  const json& j_;
  ApiError* error_;
};

// A token-id array: every element an integer in the vocabulary.
bool TokenIds(const json& v, int64_t vocab, const char* param, std::vector<int32_t>* out, ApiError* error) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_number_integer() || v[i].get<int64_t>() < 0 || v[i].get<int64_t>() >= vocab) {
      error->param = param;
      error->message = std::string(param) + "[" + std::to_string(i) + "]: " + v[i].dump() +
                       " is not a token id in [0, " + std::to_string(vocab) + ")";
      return false;
    }
    out->push_back(static_cast<int32_t>(v[i].get<int64_t>()));
  }
  return true;
}

bool EncodeText(const std::string& text, const ApiContext& ctx, bool add_special, const char* param,
                std::vector<int32_t>* out, ApiError* error) {
  if (ctx.tokenizer == nullptr) {
    error->param = param;
    error->message = std::string(param) + ": this model has no tokenizer; send token ids";
    return false;
  }
  // The JSON parser has already refused invalid UTF-8.
  EncodeOptions eo;
  eo.add_special_tokens = add_special;
  auto ids = ctx.tokenizer->Encode(text, eo);
  if (!ids.ok()) {
    error->param = param;
    error->message = std::string(param) + ": " + ids.status().message();
    return false;
  }
  *out = std::move(*ids);
  return true;
}

// The prompts of a completions request: a string, an array of strings, an array of token ids,
// or an array of such arrays.
bool CompletionPrompts(const json& p, const ApiContext& ctx, int64_t vocab, std::vector<std::vector<int32_t>>* out,
                       ApiError* error) {
  error->param = "prompt";
  if (p.is_string()) {
    out->emplace_back();
    return EncodeText(p.get<std::string>(), ctx, true, "prompt", &out->back(), error);
  }
  if (!p.is_array() || p.empty()) {
    error->message = "prompt: expected a string, an array of strings or an array of token ids";
    return false;
  }
  if (p[0].is_number()) {
    out->emplace_back();
    return TokenIds(p, vocab, "prompt", &out->back(), error);
  }
  if (p.size() > 64) {
    error->message = "prompt: at most 64 prompts per request";
    return false;
  }
  for (const json& item : p) {
    out->emplace_back();
    if (item.is_string()) {
      if (!EncodeText(item.get<std::string>(), ctx, true, "prompt", &out->back(), error)) return false;
    } else if (item.is_array()) {
      if (!TokenIds(item, vocab, "prompt", &out->back(), error)) return false;
    } else {
      error->message = "prompt: expected a string, an array of strings or an array of token ids";
      return false;
    }
  }
  return true;
}

// A chat request's messages rendered through the model's chat template, then tokenized.
bool ChatPrompt(const json& messages, const nlohmann::ordered_json& tools, const ApiContext& ctx, std::vector<int32_t>* out,
                ApiError* error) {
  error->param = "messages";
  if (ctx.chat_template == nullptr || ctx.tokenizer == nullptr) {
    error->message = "messages: this model has no chat template (start the server with --chat-template FILE)";
    return false;
  }
  if (!messages.is_array() || messages.empty()) {
    error->message = "messages: expected a non-empty array of messages";
    return false;
  }
  ChatTemplateInputs in;
  if (auto bos = ctx.tokenizer->bos_id()) in.bos_token = ctx.tokenizer->IdToToken(*bos);
  if (auto eos = ctx.tokenizer->eos_id()) in.eos_token = ctx.tokenizer->IdToToken(*eos);
  in.add_generation_prompt = true;
  static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant", "tool"};
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      error->message = where + ": expected an object with a string \"role\"";
      return false;
    }
    const std::string role = m["role"].get<std::string>();
    if (!kRoles.count(role)) {
      error->message = where + ".role: '" + role + "' is not one of system, developer, user, assistant, tool";
      return false;
    }
    std::string content;
    const json c = m.contains("content") ? m["content"] : json();
    if (c.is_string()) {
      content = c.get<std::string>();
    } else if (c.is_array()) {  // content parts: the text ones, concatenated
      for (const json& part : c) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
          error->message = where + ".content: only text parts are supported";
          return false;
        }
        content += part["text"].get<std::string>();
      }
    } else if (!c.is_null() || role != "assistant") {
      error->message = where + ".content: expected a string or an array of text parts";
      return false;
    }
    ChatMessage msg{role == "developer" ? "system" : role, content, {}};
    // What tool-using templates read: an assistant turn's calls (arguments as an object, as
    // transformers' templates expect, where OpenAI sends a JSON string) and a tool result's id.
    if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
      nlohmann::ordered_json calls = nlohmann::ordered_json::array();
      for (const json& call : m["tool_calls"]) {
        nlohmann::ordered_json c = call;
        if (c.contains("function") && c["function"].is_object() && c["function"].contains("arguments") &&
            c["function"]["arguments"].is_string()) {
          auto args = nlohmann::ordered_json::parse(c["function"]["arguments"].get<std::string>(), nullptr, false);
          if (!args.is_discarded()) c["function"]["arguments"] = args;
        }
        calls.push_back(std::move(c));
      }
      msg.extra["tool_calls"] = std::move(calls);
    }
    for (const char* key : {"tool_call_id", "name"})
      if (m.contains(key) && m[key].is_string()) msg.extra[key] = m[key];
    in.messages.push_back(std::move(msg));
  }
  if (!tools.empty()) in.extra_context["tools"] = tools;
  auto text = RenderChatTemplate(*ctx.chat_template, in);
  if (!text.ok()) {
    error->message = "messages: " + text.status().message();
    return false;
  }
  // The template writes BOS and the turn markers itself, as transformers assumes.
  return EncodeText(*text, ctx, false, "messages", out, error);
}

}  // namespace

json ApiError::Body() const {
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json() : json(param)},
                {"code", code.empty() ? json() : json(code)}}}};
}

std::optional<ApiRequest> ParseRequest(const std::string& body, bool chat, const ApiContext& ctx, ApiError* error) {
  *error = ApiError{};
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error->message = "the body is not valid JSON (or not valid UTF-8)";
    return std::nullopt;
  }
  if (!j.is_object()) {
    error->message = "the body must be a JSON object";
    return std::nullopt;
  }
  ApiRequest out;
  out.chat = chat;
  Fields f(j, error);
  for (const auto& [key, value] : j.items())
    if (!KnownKeys().count(key)) out.ignored_keys.push_back(key);
  if (const std::string key = UnsupportedSetting(j); !key.empty()) {
    error->param = key;
    error->code = "unsupported_parameter";
    error->message = key + ": " + j[key].dump(-1, ' ', /*ensure_ascii=*/true).substr(0, 200) +
                     " is not supported by fastgen (the answer would not be what it asks for)";
    return std::nullopt;
  }

  if (f.Has("model")) {
    if (!j["model"].is_string()) {
      f.Fail("model", "model: expected a string, got " + Fields::TypeName(j["model"]));
      return std::nullopt;
    }
    if (j["model"].get<std::string>() != ctx.model_id) {
      error->param = "model";
      error->code = "model_not_found";
      error->message = "model: '" + j["model"].get<std::string>() + "' is not served here (this server serves '" +
                       ctx.model_id + "')";
      return std::nullopt;
    }
  }
  runtime::GenerationParams p = ctx.defaults;
  int64_t max_tokens = -1, n = 1, seed = -1, top_k = -1, last_n = -2;
  if (!f.Bool("stream", &out.stream)) return std::nullopt;
  if (f.Has("stream_options")) {
    const json& so = j["stream_options"];
    if (!so.is_object()) {
      f.Fail("stream_options", "stream_options: expected an object");
      return std::nullopt;
    }
    Fields sf(so, error);
    if (!sf.Bool("include_usage", &out.include_usage)) return std::nullopt;
  }
  if (!f.Integer("max_tokens", 1, 1 << 24, &max_tokens) ||
      !f.Integer("max_completion_tokens", 1, 1 << 24, &max_tokens) || !f.Integer("n", 1, 128, &n) ||
      !f.Integer("seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), &seed) ||
      !f.Number("temperature", 0, 2, &p.sampler.temperature) || !f.Number("top_p", 0, 1, &p.sampler.top_p, true) ||
      !f.Integer("top_k", 0, 1 << 24, &top_k) || !f.Number("min_p", 0, 1, &p.sampler.min_p) ||
      !f.Number("presence_penalty", -2, 2, &p.sampler.presence_penalty) ||
      !f.Number("frequency_penalty", -2, 2, &p.sampler.frequency_penalty) ||
      !f.Number("repeat_penalty", 0, 100, &p.sampler.repetition_penalty, true) ||
      !f.Integer("repeat_last_n", -1, 1 << 30, &last_n) || !f.Bool("ignore_eos", &p.ignore_eos) ||
      !f.Bool("skip_special_tokens", &p.skip_special_tokens))
    return std::nullopt;
  if (!ParseOutputFormat(body, j, ctx, error, &p)) return std::nullopt;
  if (f.Has("user") && !j["user"].is_string()) {
    f.Fail("user", "user: expected a string");
    return std::nullopt;
  }
  p.max_tokens = max_tokens;
  p.n = static_cast<int>(n);
  if (seed != -1) p.sampler.seed = static_cast<uint64_t>(seed);
  if (top_k >= 0) p.sampler.top_k = static_cast<int32_t>(top_k);
  if (last_n != -2) p.sampler.penalty_last_n = static_cast<int32_t>(last_n);

  if (f.Has("stop")) {
    const json& s = j["stop"];
    if (s.is_string()) {
      p.stop = {s.get<std::string>()};
    } else if (s.is_array() && s.size() <= 16) {
      for (const json& item : s) {
        if (!item.is_string()) {
          f.Fail("stop", "stop: expected a string or an array of up to 16 strings");
          return std::nullopt;
        }
        p.stop.push_back(item.get<std::string>());
      }
    } else {
      f.Fail("stop", "stop: expected a string or an array of up to 16 strings");
      return std::nullopt;
    }
    for (const std::string& s : p.stop)
      if (s.size() > 1024) {
        f.Fail("stop", "stop: a stop string is longer than 1024 bytes");
        return std::nullopt;
      }
  }
  const int64_t vocab = ctx.tokenizer ? ctx.tokenizer->vocab_size() : std::numeric_limits<int32_t>::max();
  if (f.Has("logit_bias")) {
    const json& lb = j["logit_bias"];
    if (!lb.is_object() || lb.size() > 1024) {
      f.Fail("logit_bias", "logit_bias: expected an object of up to 1024 token id -> bias entries");
      return std::nullopt;
    }
    for (const auto& [key, value] : lb.items()) {
      char* end = nullptr;
      errno = 0;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || errno != 0 || id < 0 || id >= vocab) {
        f.Fail("logit_bias", "logit_bias: key '" + key + "' is not a token id in [0, " + std::to_string(vocab) + ")");
        return std::nullopt;
      }
      if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < -100 ||
          value.get<double>() > 100) {
        f.Fail("logit_bias", "logit_bias: the bias of token " + key + " must be a number in [-100, 100]");
        return std::nullopt;
      }
      // -100 bans the token, as in the OpenAI API.
      p.sampler.logit_bias.emplace_back(static_cast<int32_t>(id), value.get<double>() <= -100
                                                                       ? -std::numeric_limits<float>::infinity()
                                                                       : static_cast<float>(value.get<double>()));
    }
  }
  if (chat) {
    bool logprobs = false;
    int64_t top = 0;
    if (!f.Bool("logprobs", &logprobs) || !f.Integer("top_logprobs", 0, 20, &top)) return std::nullopt;
    if (f.Has("top_logprobs") && !logprobs) {
      f.Fail("top_logprobs", "top_logprobs: needs logprobs: true");
      return std::nullopt;
    }
    out.chat_logprobs = logprobs;
    p.top_logprobs = logprobs ? static_cast<int>(top) : -1;
    p.stop_ids.insert(p.stop_ids.end(), ctx.chat_stop_ids.begin(), ctx.chat_stop_ids.end());
    if (!j.contains("messages")) {
      f.Fail("messages", "messages: required");
      return std::nullopt;
    }
    runtime::Request r;
    if (!ParseTools(body, j, ctx, error, &out, &p)) return std::nullopt;
    if (!ChatPrompt(j["messages"], out.tool_mode == ToolMode::kNone ? nlohmann::ordered_json::array() : out.tools_json,
                    ctx, &r.prompt, error))
      return std::nullopt;
    r.params = p;
    out.requests.push_back(std::move(r));
  } else {
    if (f.Has("tools") && !(j["tools"].is_array() && j["tools"].empty())) {
      f.Fail("tools", "tools: tool calls are a chat completions feature (/v1/chat/completions)");
      return std::nullopt;
    }
    int64_t logprobs = -1;
    if (!f.Integer("logprobs", 0, 20, &logprobs)) return std::nullopt;
    out.legacy_logprobs = logprobs >= 0;
    p.top_logprobs = static_cast<int>(logprobs);
    if (!j.contains("prompt")) {
      f.Fail("prompt", "prompt: required");
      return std::nullopt;
    }
    std::vector<std::vector<int32_t>> prompts;
    if (!CompletionPrompts(j["prompt"], ctx, vocab, &prompts, error)) return std::nullopt;
    for (auto& ids : prompts) {
      runtime::Request r;
      r.prompt = std::move(ids);
      r.params = p;
      out.requests.push_back(std::move(r));
    }
  }
  // Errors the engine would find: named here, before anything is queued.
  for (const runtime::Request& r : out.requests) {
    const int64_t len = static_cast<int64_t>(r.prompt.size());
    if (len == 0) {
      f.Fail(chat ? "messages" : "prompt", std::string(chat ? "messages" : "prompt") + ": the prompt has no tokens");
      return std::nullopt;
    }
    if (len >= ctx.context) {
      error->param = chat ? "messages" : "prompt";
      error->code = "context_length_exceeded";
      error->message = "the prompt has " + std::to_string(len) + " tokens; this model's context holds " +
                       std::to_string(ctx.context) + " (prompt and completion together)";
      return std::nullopt;
    }
    if (max_tokens > 0 && len + max_tokens > ctx.context) {
      error->param = f.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
      error->code = "context_length_exceeded";
      error->message = error->param + ": the prompt's " + std::to_string(len) + " tokens and " +
                       std::to_string(max_tokens) + " more exceed the context of " + std::to_string(ctx.context) +
                       " tokens";
      return std::nullopt;
    }
  }
  return out;
}

json ChatLogprob(const runtime::TokenDelta& d, const Tokenizer* tokenizer) {
  auto entry = [&](int32_t id, float lp) {
    const std::string text = tokenizer ? tokenizer->Decode(std::span<const int32_t>(&id, 1)) : std::to_string(id);
    json bytes = json::array();
    for (unsigned char ch : text) bytes.push_back(static_cast<int>(ch));
    // Invalid UTF-8 (a token holding part of a character) goes out escaped; bytes keep it exact.
    return json{{"token", IsValidUtf8(text) ? text : EscapeForTerminal(text)}, {"logprob", lp}, {"bytes", bytes}};
  };
  json e = entry(d.id, d.logprob ? d.logprob->logprob : 0.0f);
  e["top_logprobs"] = json::array();
  for (const auto& t : d.top) e["top_logprobs"].push_back(entry(t.id, t.logprob));
  return e;
}

void AppendLegacyLogprob(const runtime::TokenDelta& d, const Tokenizer* tokenizer, int64_t text_offset, json* lp) {
  auto text_of = [&](int32_t id) {
    const std::string t = tokenizer ? tokenizer->Decode(std::span<const int32_t>(&id, 1)) : std::to_string(id);
    return IsValidUtf8(t) ? t : EscapeForTerminal(t);
  };
  (*lp)["tokens"].push_back(text_of(d.id));
  (*lp)["token_logprobs"].push_back(d.logprob ? d.logprob->logprob : 0.0f);
  json top = json::object();
  for (const auto& t : d.top) top[text_of(t.id)] = t.logprob;
  (*lp)["top_logprobs"].push_back(top);
  (*lp)["text_offset"].push_back(text_offset);
}

json UsageJson(const runtime::Usage& u) {
  return json{{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

}  // namespace fastgen::server

#include "server/tool_calls.h"

#include <algorithm>

#include "decoding/constrained/json_schema.h"

namespace fastgen::server {
namespace {

using ojson = nlohmann::ordered_json;

std::string Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// A call's JSON object: {"name": a known tool, "arguments" (or Llama's "parameters"): an object}.
bool ReadCall(std::string_view text, const std::vector<ToolSpec>& tools, ToolCall* out) {
  const ojson j = ojson::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string()) return false;
  const std::string name = j["name"].get<std::string>();
  if (std::none_of(tools.begin(), tools.end(), [&](const ToolSpec& t) { return t.name == name; })) return false;
  const char* key = j.contains("arguments") ? "arguments" : "parameters";
  if (!j.contains(key) || !j[key].is_object()) return false;
  out->name = name;
  out->arguments = j[key].dump();
  return true;
}

// One past the '}' closing the JSON object that starts at text[at] ('{'), or npos: braces in
// strings (with their escapes) do not count.
size_t ObjectEnd(const std::string& text, size_t at) {
  if (text[at] != '{') return std::string::npos;
  int depth = 0;
  bool in_string = false;
  for (size_t i = at; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return std::string::npos;
}

}  // namespace

ToolCallSyntax ToolCallSyntaxOf(const std::string& chat_template) {
  if (chat_template.find("<tool_call>") != std::string::npos) return ToolCallSyntax::kHermes;
  if (chat_template.find("\"parameters\": dictionary of argument name") != std::string::npos) return ToolCallSyntax::kLlama31;
  return ToolCallSyntax::kJsonLines;
}

Expected<std::string> ToolCallGbnf(const std::vector<ToolSpec>& tools, const std::string& forced, bool parallel,
                                   ToolCallSyntax syntax) {
  // One schema for "a call to one of the tools": anyOf over {"name": const, "arguments": its
  // parameters}, closed objects (a tool's arguments are exactly its parameters, as strict mode).
  ojson any_of = ojson::array();
  for (const ToolSpec& t : tools) {
    if (!forced.empty() && t.name != forced) continue;
    const char* key = syntax == ToolCallSyntax::kLlama31 ? "parameters" : "arguments";
    ojson call = {{"type", "object"},
                  {"properties", {{"name", {{"const", t.name}}}, {key, t.parameters}}},
                  {"required", {"name", key}},
                  {"additionalProperties", false}};
    any_of.push_back(std::move(call));
  }
  if (any_of.empty()) return InvalidArgument("tool_choice: no tool named '" + forced + "'");
  const ojson schema = any_of.size() == 1 ? any_of[0] : ojson{{"anyOf", any_of}};
  constrained::JsonSchemaOptions opts;
  opts.closed_objects = true;
  auto gbnf = constrained::JsonSchemaToGbnf(schema, opts);
  if (!gbnf.ok()) return gbnf.status().WithContext("tools: a function's parameters");
  std::string out = *gbnf;
  const std::string call = syntax == ToolCallSyntax::kHermes ? "fastgen-tool-call" : "root";
  if (syntax == ToolCallSyntax::kHermes) out += "\nfastgen-tool-call ::= \"<tool_call>\\n\" root \"\\n</tool_call>\"\n";
  out += std::string(kToolCallRoot) + " ::= " + call + (parallel ? " (\"\\n\" " + call + ")*" : "") + "\n";
  return out;
}

ParsedAnswer ParseToolCalls(const std::string& text, ToolCallSyntax syntax, const std::vector<ToolSpec>& tools) {
  ParsedAnswer out;
  if (syntax == ToolCallSyntax::kHermes) {
    static constexpr std::string_view kOpen = "<tool_call>", kClose = "</tool_call>";
    std::string rest;
    size_t at = 0;
    while (true) {
      const size_t open = text.find(kOpen, at);
      const size_t close = open == std::string::npos ? std::string::npos : text.find(kClose, open + kOpen.size());
      if (close == std::string::npos) {
        rest += text.substr(at);
        break;
      }
      ToolCall call;
      const size_t inner = open + kOpen.size();
      if (ReadCall(std::string_view(text).substr(inner, close - inner), tools, &call)) {
        rest += text.substr(at, open - at);
        out.calls.push_back(std::move(call));
      } else {  // not a call to a known tool: it stays text
        rest += text.substr(at, close + kClose.size() - at);
      }
      at = close + kClose.size();
    }
    out.content = Trim(rest);
    return out;
  }
  // Bare JSON: the whole answer must be call objects (one per line as the grammar writes them,
  // each possibly spread over lines) or it is text.
  std::vector<ToolCall> calls;
  size_t at = 0;
  bool all = true;
  while (true) {
    at = text.find_first_not_of(" \t\r\n", at);
    if (at == std::string::npos) break;
    const size_t end = ObjectEnd(text, at);
    ToolCall call;
    if (end == std::string::npos || !ReadCall(std::string_view(text).substr(at, end - at), tools, &call)) {
      all = false;
      break;
    }
    calls.push_back(std::move(call));
    at = end;
  }
  if (all && !calls.empty()) {
    out.calls = std::move(calls);
  } else {
    out.content = Trim(text);
  }
  return out;
}

}  // namespace fastgen::server

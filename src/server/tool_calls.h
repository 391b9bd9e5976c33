// Tool calls in chat completions (OpenAI's `tools` / `tool_choice`): the grammar a forced call is
// generated under, and the parse of a finished answer into `tool_calls`.
//
// A model writes calls in its chat template's syntax. Templates trained on the Hermes format
// (Qwen 2/2.5/3, Hermes, many fine-tunes; the template mentions "<tool_call>") wrap each call as
//   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
// Llama 3.1-3.3 templates ask for {"name": "f", "parameters": {...}} (their text says
// `"parameters": dictionary of argument name and its value`), and the others get bare JSON objects
// with "arguments", one call per line. A forced call (tool_choice "required"
// or a named function) is generated under a grammar of exactly that syntax over the tools'
// parameter schemas; with "auto" the model writes freely and a finished answer that holds calls
// in the syntax is returned as tool_calls.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace fastgen::server {

enum class ToolCallSyntax { kHermes, kLlama31, kJsonLines };

// The syntax a chat template's model writes calls in.
ToolCallSyntax ToolCallSyntaxOf(const std::string& chat_template);

struct ToolSpec {
  std::string name;
  nlohmann::ordered_json parameters;  // a JSON Schema of the arguments object
};

// GBNF (start rule kToolCallRoot) for one call, or several when `parallel`, to the tools (only
// `forced` when it is not empty). Errors name the tool whose parameters cannot be compiled.
inline constexpr const char* kToolCallRoot = "fastgen-tool-calls";
Expected<std::string> ToolCallGbnf(const std::vector<ToolSpec>& tools, const std::string& forced, bool parallel,
                                   ToolCallSyntax syntax);

struct ToolCall {
  std::string name;
  std::string arguments;  // the arguments object as JSON text (OpenAI's shape)
};

struct ParsedAnswer {
  std::string content;           // the text outside the calls (whitespace-trimmed)
  std::vector<ToolCall> calls;   // empty: a plain answer
};

// Splits a finished answer into its text and its calls. Only calls to tools in `tools`, written
// whole in the syntax, count; anything else stays text.
ParsedAnswer ParseToolCalls(const std::string& text, ToolCallSyntax syntax, const std::vector<ToolSpec>& tools);

}  // namespace fastgen::server

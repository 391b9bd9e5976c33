// Tool calls in chat completions (OpenAI's `tools` / `tool_choice`): the grammar a forced call is
// generated under, and the parse of a finished answer into `tool_calls`.
//
// A model writes calls in its chat template's syntax. Templates trained on the Hermes format
// (Qwen 2/2.5/3, Hermes, many fine-tunes; the template mentions "<tool_call>") wrap each call as
//   <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
// Llama 3.1-3.3 templates ask for {"name": "f", "parameters": {...}} (their text says
// `"parameters": dictionary of argument name and its value`), and the others get bare JSON objects
// with "arguments", one call per line. Mistral's templates (v3 tokenizers and later: the
// template mentions "[TOOL_CALLS]") write [TOOL_CALLS] and then a JSON array of
// {"name", "arguments"} objects; [TOOL_CALLS] is a control token, absent from the text when
// special tokens are skipped, so a leading array of calls counts too, and a forced call is
// generated as the array alone. Mistral's templates also require call ids of 9 letters and
// digits (ToolCallId). A forced call (tool_choice "required"
// or a named function) is generated under a grammar of exactly that syntax over the tools'
// parameter schemas; with "auto" the model writes freely and a finished answer that holds calls
// in the syntax is returned as tool_calls.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace fastgen::server {

enum class ToolCallSyntax { kHermes, kLlama31, kJsonLines, kMistral };

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

// A new call id in the shape the syntax's templates accept back in the history: Mistral's 9
// letters and digits, else OpenAI's "call_" and 20 hex digits.
std::string ToolCallId(ToolCallSyntax syntax);

// tool_choice "auto" where the syntax opens a call with text a trigger can spot (Hermes'
// "<tool_call>"): the grammar (start rule kToolCallRoot) of one call's body after the trigger,
// through its closing tag, which the engine applies lazily (GenerationParams::grammar_trigger) so
// that the model writes freely but every call it starts is well-formed. An empty trigger where
// the syntax has none fastgen can spot in the text (bare JSON; Mistral's [TOOL_CALLS] is a
// control token without bytes): those calls are parsed after the fact.
struct LazyToolGrammar {
  std::string gbnf;
  std::string trigger;
};
Expected<LazyToolGrammar> ToolCallLazyGbnf(const std::vector<ToolSpec>& tools, ToolCallSyntax syntax);

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

// What a streamed answer under tools sends as its text arrives: its text as content while it
// cannot be part of a call (a possible "<tool_call>" is held back until ruled out), and each call
// as a header (its index and name, once the name is written and is a known tool's) followed by
// its arguments' JSON text in pieces as the model writes them. Accumulated, the pieces are what
// ParseToolCalls makes of the whole answer, with two exceptions that a stream cannot take back:
// a call whose name and arguments came out in that order but whose object is then malformed
// stays a call, and in the bare-JSON syntaxes text after calls is sent as content (the whole
// answer would have been text). A call that does not start {"name": ..., "arguments": ...} is
// held until its object closes and sent whole.
// A JSON text read one character at a time, brackets inside strings (with their escapes) not
// counting: Feed says when the outermost object or array has closed.
struct JsonScan {
  int depth = 0;
  bool in_string = false, escaped = false;
  bool Feed(char c) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return true;
    }
    return false;
  }
};

struct ToolStreamDelta {
  enum class Kind { kContent, kCallHeader, kArguments };
  Kind kind = Kind::kContent;
  int call = -1;     // the call's index (headers and arguments)
  std::string text;  // content text, the call's name (header), or a piece of its arguments
};

class ToolCallStream {
 public:
  ToolCallStream(ToolCallSyntax syntax, std::vector<ToolSpec> tools) : syntax_(syntax), tools_(std::move(tools)) {}

  // The deltas the new text completes, in order.
  std::vector<ToolStreamDelta> Feed(std::string_view text);
  // At the end of the answer: what was held back (text that was not a call after all).
  std::vector<ToolStreamDelta> Finish();
  int calls() const { return calls_; }

 private:
  enum class State { kText, kPlain, kArrayOpen, kCallStart, kArguments, kCallTail, kCloseTag, kWholeCall };
  bool Step(std::vector<ToolStreamDelta>* out);  // false: needs more text
  void Content(std::string_view text, std::vector<ToolStreamDelta>* out);
  void ContentUpTo(std::string_view tag, std::vector<ToolStreamDelta>* out);  // holds back a possible `tag`
  bool KnownTool(const std::string& name) const;
  bool hermes() const { return syntax_ == ToolCallSyntax::kHermes; }
  bool mistral() const { return syntax_ == ToolCallSyntax::kMistral; }

  ToolCallSyntax syntax_;
  std::vector<ToolSpec> tools_;
  State state_ = State::kText;
  std::string text_;      // the answer so far
  size_t pos_ = 0;        // consumed up to here
  size_t call_start_ = 0; // where the current call's text (its tag or '{') begins
  size_t object_ = 0;     // where the current call's object begins
  std::string pending_ws_;   // trailing whitespace of the content, sent if more content follows
  bool content_started_ = false;
  bool first_in_array_ = false;  // Mistral: no ',' before this call
  int calls_ = 0;
  JsonScan scan_;  // the arguments' value, then the rest of the call's object
};

}  // namespace fastgen::server

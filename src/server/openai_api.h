// The OpenAI API's request and response bodies, translated to and from the runtime: a
// completions or chat-completions request becomes one runtime::Request per prompt (hostile JSON
// refused with an error naming the parameter), and engine events become response objects and
// stream chunks in the shapes the official clients expect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "decoding/constrained/output_format.h"
#include "runtime/request.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::server {

// An error as the OpenAI API reports it: {"error": {"message", "type", "param", "code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
  nlohmann::json Body() const;
};

// What the server knows when it parses a request.
struct ApiContext {
  std::string model_id;                          // what /v1/models lists; "model" must name it
  const Tokenizer* tokenizer = nullptr;          // null: prompts must be token ids
  const std::string* chat_template = nullptr;    // null: chat completions are refused
  std::vector<int32_t> chat_stop_ids;            // end-of-turn ids of the chat format
  runtime::GenerationParams defaults;            // the server's sampling defaults (serve's flags)
  int64_t context = 0;                           // tokens one sequence may hold
  // Compiled response_format / grammar fields by their text (null: compiled per request).
  constrained::OutputFormatCache* output_formats = nullptr;
};

// What a chat request allows of tool calls: none, the model's choice (parsed from the answer),
// or forced (generated under the calls' grammar).
enum class ToolMode { kNone, kAuto, kForced };

struct ApiRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;       // stream_options.include_usage
  bool legacy_logprobs = false;     // completions' logprobs: N (tokens, token_logprobs, top_logprobs)
  bool chat_logprobs = false;       // chat's logprobs: true
  std::vector<runtime::Request> requests;  // one per prompt (completions may send several)
  std::vector<std::string> ignored_keys;   // top-level keys fastgen does not use
  ToolMode tool_mode = ToolMode::kNone;
  ToolCallSyntax tool_syntax = ToolCallSyntax::kJsonLines;
  std::vector<ToolSpec> tools;
  nlohmann::ordered_json tools_json;       // as the client sent them (for the chat template)
};

// Parses a POST body. `chat`: /v1/chat/completions, else /v1/completions.
std::optional<ApiRequest> ParseRequest(const std::string& body, bool chat, const ApiContext& ctx, ApiError* error);

// A chosen token and its logprobs in the chat API's "logprobs.content" entry shape.
nlohmann::json ChatLogprob(const runtime::TokenDelta& d, const Tokenizer* tokenizer);
// The same in the completions API's legacy shape, appended to the arrays of `lp`.
void AppendLegacyLogprob(const runtime::TokenDelta& d, const Tokenizer* tokenizer, int64_t text_offset,
                         nlohmann::json* lp);

nlohmann::json UsageJson(const runtime::Usage& u);

}  // namespace fastgen::server

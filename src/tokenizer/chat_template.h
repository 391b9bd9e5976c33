// Chat templates: render a model's Jinja `chat_template` for a conversation.
//
// The output matches what transformers.js (@huggingface/jinja) renders for the same template and
// inputs, byte for byte; see tokenizer/jinja/ for the engine. Errors (template syntax with line
// and column, unknown filters, the template's own raise_exception("...")) come back as Status.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fastgen {

struct ChatMessage {
  std::string role;
  std::string content;
  // Further fields of the message object the template sees (tool_calls, reasoning_content, a
  // list-valued "content" for multimodal templates, ...). A key here overrides role/content.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct ChatTemplateInputs {
  std::vector<ChatMessage> messages;
  bool add_generation_prompt = true;
  std::string bos_token, eos_token;
  // Further top-level variables (tools, enable_thinking, documents, ...); they override the
  // fields above on a name clash. ordered_json keeps key order, which `tojson` output shows; a
  // plain nlohmann::json converts implicitly (with its keys sorted).
  nlohmann::ordered_json extra_context = nlohmann::ordered_json::object();
};

// Renders `template_source` for `in`. The variables the template sees are `messages` (a list
// of {role, content, ...extra}), `add_generation_prompt`, `bos_token`, `eos_token`, then every
// key of `extra_context`.
Expected<std::string> RenderChatTemplate(std::string_view template_source, const ChatTemplateInputs& in);

// Finds the chat template of a model: `model_path` is a model directory (chat_template.jinja,
// else tokenizer_config.json's "chat_template", else chat_template.json), a tokenizer_config.json
// file, or a GGUF file (metadata "tokenizer.chat_template"). A list of named templates yields the
// one named "default". NotFound when the model has no template.
Expected<std::string> LoadChatTemplate(const std::string& model_path);

}  // namespace fastgen

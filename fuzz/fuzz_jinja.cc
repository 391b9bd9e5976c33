// libFuzzer entry point for the Jinja engine: the input is a template, parsed and then rendered
// against a context with the variables chat templates use (messages of every role, tools,
// special tokens, flags). Syntax and render errors are expected; crashes, sanitizer reports and
// renders that escape the evaluation budget are bugs.
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tokenizer/jinja/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are terse."},
      {"role": "user", "content": "Hi <b>there</b> \u00e9"},
      {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
      {"role": "tool", "content": "{\"ok\": true}"},
      {"role": "user", "content": [{"type": "text", "text": "part"}, {"type": "image"}]}
    ],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true, "enable_thinking": false,
    "n": 3, "x": 1.5, "none": null
  })");
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = fastgen::jinja::Template::Parse(source);
  if (!tmpl.ok()) return 0;
  fastgen::jinja::RenderLimits limits;
  limits.max_steps = 200000;  // keep each input cheap; the budget itself is what is tested
  limits.max_output_bytes = 1 << 20;
  (void)tmpl->Render(context, limits);
  return 0;
}

// libFuzzer entry point for the chat-template renderer as the CLI and the server call it: the
// input is split at its first NUL into a template and a JSON conversation ({"messages": [...],
// plus any top-level variables}) which becomes ChatTemplateInputs, as a request body would.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_input.h"
#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [tmpl, conversation] = fastgen::fuzz::SplitAtNul(data, size);
  fastgen::ChatTemplateInputs in;
  in.bos_token = "<s>";
  in.eos_token = "</s>";
  const auto j = nlohmann::ordered_json::parse(conversation, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "messages" && it.value().is_array()) {
        for (const auto& m : it.value()) {
          if (!m.is_object()) continue;
          fastgen::ChatMessage msg;
          if (m.contains("role") && m["role"].is_string()) msg.role = m["role"].get<std::string>();
          if (m.contains("content") && m["content"].is_string()) msg.content = m["content"].get<std::string>();
          msg.extra = m;
          in.messages.push_back(std::move(msg));
        }
      } else {
        in.extra_context[it.key()] = it.value();
      }
    }
  } else {
    in.messages.push_back({"user", std::string(conversation), {}});
  }
  (void)fastgen::RenderChatTemplate(tmpl, in);
  return 0;
}

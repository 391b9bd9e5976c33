// libFuzzer entry point for the server's request path: a request body, as a client sends it to
// /v1/completions or /v1/chat/completions (the first byte picks which), parsed into engine
// requests: JSON types and ranges of every parameter, prompts as text or token ids, chat messages
// rendered through a real chat template and tokenized. Errors are expected; crashes, sanitizer
// reports and hangs are bugs. Reads fg-target's tokenizer and Llama 3's chat template from
// $FASTGEN_SHARED (default ../shared).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace {

struct Context {
  std::unique_ptr<fastgen::Tokenizer> tokenizer;
  std::string chat_template;
  fastgen::server::ApiContext api;
};

Context& Shared() {
  static Context c = [] {
    Context x;
    const char* env = std::getenv("FASTGEN_SHARED");
    const std::string shared = env ? env : "../shared";
    auto tok = fastgen::Tokenizer::Load(shared + "/models/fg-target");
    if (tok.ok()) x.tokenizer = std::move(*tok);
    auto cfg = fastgen::ReadTextFile(shared + "/tokenizers/llama3.tokenizer_config.json", fastgen::kConfigFileLimit);
    if (cfg.ok()) {
      const auto j = nlohmann::json::parse(*cfg, nullptr, false);
      if (j.is_object() && j.contains("chat_template") && j["chat_template"].is_string())
        x.chat_template = j["chat_template"].get<std::string>();
    }
    x.api.model_id = "fuzz-model";
    x.api.tokenizer = x.tokenizer.get();
    x.api.chat_template = x.chat_template.empty() ? nullptr : &x.chat_template;
    x.api.context = 2048;
    return x;
  }();
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Context& c = Shared();
  const bool chat = data[0] & 1;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  fastgen::server::ApiError error;
  auto parsed = fastgen::server::ParseRequest(body, chat, c.api, &error);
  if (!parsed) {
    (void)error.Body().dump();
    return 0;
  }
  for (const auto& r : parsed->requests) {
    fastgen::runtime::TokenDelta d;
    d.id = r.prompt.empty() ? 0 : r.prompt.back();
    d.logprob = fastgen::runtime::TokenLogprob{d.id, -1.0f};
    (void)fastgen::server::ChatLogprob(d, c.tokenizer.get()).dump();
  }
  return 0;
}

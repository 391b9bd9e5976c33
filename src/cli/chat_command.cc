// `fastgen chat`: an interactive conversation. Each user line is appended to the conversation,
// the model's chat template renders the whole of it, and only the tokens after the longest
// prefix already in the KV cache are run — so earlier turns are never recomputed.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/sampler_flags.h"
#include "core/diagnostics.h"
#include "decoding/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

struct ChatFlags {
  ModelFlags model;
  std::string system;
  std::string template_file;
  int64_t n_predict = 512;
  int64_t ctx_size = 0;
  SamplerFlags sampler;
  KvPolicyFlags kv_policy;
};

// End-of-turn markers of the common chat formats; whichever exist as single tokens stop a reply.
constexpr const char* kTurnEnds[] = {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"};

int Chat(const ChatFlags& f) {
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  Model& model = *lm->model;
  const Checkpoint& ckpt = model.checkpoint();
  auto tok = ckpt.gguf ? Tokenizer::FromGguf(*ckpt.gguf) : Tokenizer::Load(ckpt.path);
  if (!tok.ok()) return ReportError(tok.status().WithContext("loading the tokenizer"));
  Tokenizer& tokenizer = **tok;

  auto sampler = ResolveSampler(f.sampler, model.config().vocab_size);
  if (!sampler.ok()) return ReportError(sampler.status());
  std::string tmpl;
  if (!f.template_file.empty()) {
    auto t = ReadTextFile(f.template_file, kTemplateFileLimit);
    if (!t.ok()) return ReportError(t.status());
    if (t->find_first_not_of(" \t\r\n") == std::string::npos)
      return ReportError(CorruptFile(f.template_file + ": the chat template is empty"));
    tmpl = *t;
  } else {
    auto t = LoadChatTemplate(ckpt.path);
    if (!t.ok())
      return ReportError(t.status().WithContext("the model has no usable chat template (give one with --chat-template FILE)"));
    tmpl = *t;
  }

  auto ctx_or = ContextSize(model, f.ctx_size);
  if (!ctx_or.ok()) return ReportError(ctx_or.status());
  const int64_t ctx = *ctx_or;
  // KV eviction keeps a long conversation in a bounded cache (StreamingLLM's use): the cache
  // holds the budget and one prompt piece; positions still run to -c.
  auto evictor_or = EvictorFromFlags(f.kv_policy, model, ctx);
  if (!evictor_or.ok()) return ReportError(evictor_or.status());
  std::unique_ptr<KvEvictor> evictor = std::move(*evictor_or);
  auto sparse = SparseFromFlags(f.kv_policy, model);
  if (!sparse.ok()) return ReportError(sparse.status());
  model.set_sparse_attention(sparse->get());
  auto kv = model.NewKvCache(evictor ? EvictingCacheSlots(evictor->policy(), ctx) : ctx);
  if (!kv.ok()) return ReportError(kv.status());
  // The tokens run through the model so far, in order: the cache's slots without eviction; with
  // it, the cache holds some of them (kv->length() + kv->evicted() == processed.size()).
  std::vector<int32_t> processed;

  GenerateOptions go;
  go.max_new_tokens = f.n_predict;
  go.sampler = *sampler;
  go.evictor = evictor.get();
  go.max_positions = ctx;
  for (const char* end : kTurnEnds)
    if (auto id = tokenizer.TokenToId(end)) go.stop_ids.push_back(*id);
  if (auto eos = tokenizer.eos_id()) go.stop_ids.push_back(*eos);

  ChatTemplateInputs in;
  if (auto bos = tokenizer.bos_id()) in.bos_token = tokenizer.IdToToken(*bos);
  if (auto eos = tokenizer.eos_id()) in.eos_token = tokenizer.IdToToken(*eos);
  if (!f.system.empty()) in.messages.push_back({"system", f.system, {}});

  const bool interactive = ::isatty(0);
  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    WarnIfInvalidUtf8(line, "the message");
    in.messages.push_back({"user", line, {}});
    in.add_generation_prompt = true;
    auto text = RenderChatTemplate(tmpl, in);
    if (!text.ok()) return ReportError(text.status());
    EncodeOptions eo;
    eo.add_special_tokens = false;  // the template writes BOS itself, as transformers assumes
    auto ids = tokenizer.Encode(*text, eo);
    if (!ids.ok()) return ReportError(ids.status());
    // A template that renders a conversation to nothing leaves no prompt to run.
    if (ids->empty())
      return ReportError(CorruptFile("the chat template rendered the conversation to no tokens" +
                                     (f.template_file.empty() ? std::string() : " (" + f.template_file + ")")));

    // Reuse the cached prefix; run only what follows it.
    size_t common = 0;
    while (common < processed.size() && common < ids->size() && processed[common] == (*ids)[common]) ++common;
    if (common == ids->size()) --common;  // the last token must run to produce logits
    if (evictor && common < processed.size()) {
      // An evicting cache cannot be rolled back: the template re-rendered earlier turns
      // differently, so the conversation runs again from the start.
      Warn("the chat template changed earlier turns; with --kv-evict the conversation is run again");
      kv->Clear();
      evictor->Reset();
      common = 0;
    }
    if (!evictor) kv->Truncate(static_cast<int64_t>(common));
    processed.resize(common);
    std::span<const int32_t> fresh(ids->data() + common, ids->size() - common);
    if (static_cast<int64_t>(processed.size() + fresh.size()) >= ctx)
      return ReportError(InvalidArgument("the conversation no longer fits the context of " + std::to_string(ctx) + " tokens"));

    StreamDecoder stream(tokenizer);
    std::vector<int32_t> reply;
    auto on_token = [&](int32_t id) {
      const bool stop = std::find(go.stop_ids.begin(), go.stop_ids.end(), id) != go.stop_ids.end();
      if (!stop) {
        reply.push_back(id);
        const std::string piece = stream.Push(id);
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
      }
      return true;
    };
    auto r = Generate(model, *kv, fresh, go, on_token);
    if (!r.ok()) return ReportError(r.status());
    if (r->stop_reason == StopReason::kContextFull)
      Warn("the reply was cut off at the end of the context (" + std::to_string(ctx) + " tokens; raise -c)");
    const std::string rest = stream.Flush();
    std::fwrite(rest.data(), 1, rest.size(), stdout);
    std::printf("\n");
    std::fflush(stdout);
    processed.insert(processed.end(), fresh.begin(), fresh.end());
    // Every generated token except the last has run (the last was sampled, never run).
    processed.insert(processed.end(), r->tokens.begin(), r->tokens.end());
    processed.resize(static_cast<size_t>(kv->length() + kv->evicted()));
    in.messages.push_back({"assistant", tokenizer.Decode(reply, /*skip_special_tokens=*/false), {}});
  }
  return 0;
}

}  // namespace

CommandFn AddChatCommand(CLI::App& app) {
  auto f = std::make_shared<ChatFlags>();
  CLI::App* cmd = app.add_subcommand("chat", "Chat with a model using its chat template (one user turn per input line)");
  AddModelFlags(cmd, &f->model);
  AddKvPolicyFlags(cmd, &f->kv_policy);
  cmd->add_option("--system", f->system, "System message");
  cmd->add_option("--chat-template", f->template_file, "Jinja chat template file (default: the model's own)")->check(NonEmpty());
  cmd->add_option("-n,--n-predict", f->n_predict, "Most tokens per reply (default 512)")->check(IntRange(1, int64_t{1} << 20));
  cmd->add_option("-c,--ctx-size", f->ctx_size, "Context size in tokens (default: the model's)")->check(IntRange(0, int64_t{1} << 24));
  AddSamplerFlags(cmd, &f->sampler);
  return [f] { return Chat(*f); };
}

}  // namespace fastgen::cli

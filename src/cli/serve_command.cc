// `fastgen serve`: the OpenAI-compatible server. Loads the model, starts the engine and the HTTP
// server, and on SIGTERM (or SIGINT) stops taking requests, lets the running ones finish, and
// exits 0.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli/common.h"
#include "cli/commands.h"
#include "cli/sampler_flags.h"
#include "core/diagnostics.h"
#include "runtime/engine.h"
#include "server/http_server.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

struct ServeFlags {
  ModelFlags model;
  SamplerFlags sampler;
  server::ServerOptions http;
  runtime::EngineOptions engine;
  std::string alias;
  std::string template_file;
  std::string draft_model;
  std::string draft_weights = "q8_0";
  int64_t max_body_mib = 8;
};

// End-of-turn markers of the common chat formats (as `fastgen chat`): whichever exist as single
// tokens end a chat reply.
constexpr const char* kTurnEnds[] = {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|endoftext|>"};

std::string BaseName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

int Serve(ServeFlags& f) {
  // SIGTERM and SIGINT are taken by one thread with sigwait: blocked here, before any thread
  // starts, so that every thread inherits the mask and none is interrupted mid-request.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not the end of the server

  if (f.http.api_key.empty())
    if (const char* env = std::getenv("FASTGEN_API_KEY"); env && *env) f.http.api_key = env;
  auto lm = LoadFromFlags(f.model);
  if (!lm.ok()) return ReportError(lm.status());
  Model& model = *lm->model;
  const Checkpoint& ckpt = model.checkpoint();
  std::unique_ptr<Tokenizer> tokenizer;
  auto tok = ckpt.gguf ? Tokenizer::FromGguf(*ckpt.gguf) : Tokenizer::Load(ckpt.path);
  if (tok.ok()) {
    tokenizer = std::move(*tok);
  } else {
    Warn("no tokenizer (" + tok.status().message() + "): requests must send token ids, and chat is off");
  }
  auto sampler = ResolveSampler(f.sampler, model.config().vocab_size);
  if (!sampler.ok()) return ReportError(sampler.status());

  std::string chat_template;
  bool has_template = false;
  if (!f.template_file.empty()) {
    auto t = ReadTextFile(f.template_file, kTemplateFileLimit);
    if (!t.ok()) return ReportError(t.status());
    chat_template = *t;
    has_template = true;
  } else if (tokenizer) {
    auto t = LoadChatTemplate(ckpt.path);
    if (t.ok()) {
      chat_template = *t;
      has_template = true;
    } else {
      Warn("the model has no chat template (" + t.status().message() +
           "): /v1/chat/completions is off; give one with --chat-template FILE");
    }
  }

  if (!model.kv_staircase().empty())
    return ReportError(InvalidArgument("--kv-staircase is not available in the server yet: the serving runtime's "
                                       "paged cache has one type"));
  std::unique_ptr<Model> draft;
  if (!f.draft_model.empty()) {
    ModelOptions o;
    o.kv_type = model.kv_type();
    if (f.draft_weights != "keep") {
      const std::optional<DType> type = DTypeFromName(f.draft_weights);
      if (!type) return ReportError(InvalidArgument("--draft-weights '" + f.draft_weights + "' is not a weight type or keep"));
      o.weight_type = *type;
    }
    auto d = LoadModel(f.draft_model, lm->pool.get(), o);
    if (!d.ok()) return ReportError(d.status().WithContext("--draft-model"));
    draft = std::move(*d);
    f.engine.draft = draft.get();
  }
  auto engine = runtime::Engine::Create(model, tokenizer.get(), f.engine);
  if (!engine.ok()) return ReportError(engine.status());

  server::ApiContext api;
  api.model_id = f.alias.empty() ? BaseName(ckpt.path) : f.alias;
  api.tokenizer = tokenizer.get();
  api.chat_template = has_template ? &chat_template : nullptr;
  if (tokenizer)
    for (const char* end : kTurnEnds)
      if (auto id = tokenizer->TokenToId(end)) api.chat_stop_ids.push_back(*id);
  api.defaults.sampler = *sampler;
  api.context = (*engine)->context();
  constrained::OutputFormatCache output_formats;  // one Grammar per distinct schema: its masks are cached
  api.output_formats = &output_formats;
  f.http.max_body_bytes = static_cast<size_t>(f.max_body_mib) << 20;

  server::Server http(**engine, api, f.http);
  auto port = http.Bind();
  if (!port.ok()) return ReportError(port.status());
  std::fprintf(stderr, "fastgen: serving %s on http://%s:%d (context %lld, KV %lld tokens in blocks of %lld, %d sequences at once)\n",
               EscapeForTerminal(api.model_id).c_str(), f.http.host.c_str(), *port,
               static_cast<long long>(api.context), static_cast<long long>((*engine)->Stats().kv_blocks_total *
                                                                            (*engine)->Stats().kv_block_tokens),
               static_cast<long long>(f.engine.block_tokens), f.engine.max_running);
  std::fflush(stderr);

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "fastgen: %s: finishing the requests in flight, then exiting\n",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*engine)->Drain();
    http.Stop();
  });
  http.Serve();
  // Serve returns after Stop (the waiter's), or when listening failed on its own.
  if (waiter.joinable()) {
    pthread_kill(waiter.native_handle(), SIGTERM);  // wake it if the server stopped by itself
    waiter.join();
  }
  return 0;
}

}  // namespace

CommandFn AddServeCommand(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve the model over an OpenAI-compatible HTTP API");
  AddModelFlags(cmd, &f->model);
  cmd->add_option("--host", f->http.host, "Address to listen on (default 127.0.0.1)")->check(NonEmpty());
  cmd->add_option("--port", f->http.port, "Port (default 8080; 0 picks a free one)")->check(IntRange(0, 65535));
  cmd->add_option("--api-key", f->http.api_key,
                  "Require 'Authorization: Bearer KEY' (default: $FASTGEN_API_KEY; unset: no key)");
  cmd->add_option("--alias", f->alias, "Model id in the API (default: the model's file or directory name)");
  cmd->add_option("--parallel", f->engine.max_running, "Sequences decoding at once (default 16)")->check(IntRange(1, 4096));
  cmd->add_option("-c,--ctx-size", f->engine.kv_tokens,
                  "KV cache tokens shared by all sequences (default: --parallel full contexts, at most 65536)")
      ->check(IntRange(0, int64_t{1} << 26));
  cmd->add_option("--step-tokens", f->engine.step_tokens,
                  "Tokens per forward pass: decoding tokens, then prompt chunks (default 512)")
      ->check(IntRange(1, 65536));
  cmd->add_option("--max-queue", f->engine.max_queue,
                  "Requests waiting beyond which new ones get 503 with Retry-After (default 256)")
      ->check(IntRange(0, 1 << 20));
  cmd->add_flag("--no-prefix-cache", [f](int64_t) { f->engine.prefix_cache = false; },
                "Do not share prompt blocks between requests");
  cmd->add_option("--spec-max-running", f->engine.spec_max_running,
                  "Speculate with prompt lookup while at most this many sequences decode (default 2; 0: never)")
      ->check(IntRange(0, 4096));
  cmd->add_option("--draft-model", f->draft_model,
                  "Draft model (same tokenizer) for speculative decoding while few sequences decode, where "
                  "prompt lookup finds nothing to copy (output unchanged)")
      ->check(NonEmpty());
  cmd->add_option("--draft-weights", f->draft_weights, "Weight type the draft model runs in (default q8_0; keep: the file's)");
  cmd->add_option("--draft-len", f->engine.draft_length, "Tokens the draft model drafts per step (default 4)")
      ->check(IntRange(1, 64));
  cmd->add_option("--chat-template", f->template_file, "Jinja chat template file (default: the model's own)")
      ->check(NonEmpty());
  cmd->add_option("--max-body", f->max_body_mib, "Largest request body in MiB (default 8)")->check(IntRange(1, 1024));
  cmd->add_option("--read-timeout", f->http.read_timeout_seconds,
                  "Seconds a client may take to send its request before it is dropped (default 10)")
      ->check(IntRange(1, 3600));
  cmd->add_option("--http-threads", f->http.http_threads, "HTTP connection threads (default max(32, 4 x --parallel))")
      ->check(IntRange(0, 4096));
  AddSamplerFlags(cmd, &f->sampler);
  return [f] { return Serve(*f); };
}

}  // namespace fastgen::cli

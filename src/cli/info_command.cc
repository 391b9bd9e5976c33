// `fastgen info`: what a checkpoint holds — architecture, hyperparameters, every tensor.
#include <cstdio>
#include <memory>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "io/checkpoint.h"
#include "models/stream_choice.h"

namespace fastgen::cli {
namespace {

struct InfoFlags {
  ModelFlags model;
  bool no_tensors = false;
};

// What --stream-weights auto does with this model on this CPU (stream_choice.h): known without
// decoding when the matrices fit the cache or the choice was measured before.
void PrintStreamPlan(const InfoFlags& f, const std::string& path, const CheckpointOptions& checkpoint) {
  ThreadPool pool(f.model.threads > 0 ? f.model.threads : ThreadPool::DefaultThreads());
  ModelOptions o;
  o.checkpoint = checkpoint;
  o.stream_weights = false;  // no measurement here
  auto model = LoadModel(path, &pool, o);
  if (!model.ok()) {
    std::printf("stream weights:  n/a (%s)\n", EscapeForTerminal(model.status().message()).c_str());
    return;
  }
  const auto plan = PlannedStreamWeights(**model);
  if (!plan) {
    std::printf("stream weights:  measured at the first load with %d threads (--stream-weights auto)\n", pool.size());
  } else if (plan->how == "small") {
    std::printf("stream weights:  off (the weight matrices fit half the last-level cache)\n");
  } else {
    std::printf("stream weights:  %s with %d threads (measured: %.2f ms per decode step streamed, %.2f ms cached)\n",
                plan->stream ? "on" : "off", pool.size(), plan->stream_ms, plan->cached_ms);
  }
}

int Info(const InfoFlags& f) {
  CheckpointOptions opts;
  auto overrides = ParseOverrides(f.model.override_kv);
  if (!overrides.ok()) return ReportError(overrides.status());
  opts.gguf_overrides = *overrides;
  const std::string path = f.model.path.empty() ? DefaultModelPath() : f.model.path;
  auto ckpt = OpenCheckpoint(path, opts);
  if (!ckpt.ok()) return ReportError(ckpt.status());
  const Checkpoint& k = **ckpt;
  const ModelConfig& c = k.config;
  std::printf("path:            %s\n", EscapeForTerminal(k.path).c_str());
  std::printf("format:          %s\n", k.format == CheckpointFormat::kGguf
                                           ? ("GGUF v" + std::to_string(k.gguf->version())).c_str()
                                           : "safetensors");
  std::printf("architecture:    %s\n", ArchName(c.arch));
  std::printf("vocab_size:      %lld\n", static_cast<long long>(c.vocab_size));
  std::printf("d_model:         %lld\n", static_cast<long long>(c.d_model));
  std::printf("n_layer:         %lld\n", static_cast<long long>(c.n_layer));
  std::printf("n_head:          %lld\n", static_cast<long long>(c.n_head));
  std::printf("n_kv_head:       %lld\n", static_cast<long long>(c.n_kv_head));
  std::printf("head_dim:        %lld\n", static_cast<long long>(c.head_dim));
  std::printf("d_ff:            %lld\n", static_cast<long long>(c.d_ff));
  std::printf("context_length:  %lld\n", static_cast<long long>(c.max_context));
  std::printf("norm_eps:        %g\n", c.norm_eps);
  std::printf("activation:      %s\n", c.activation == Activation::kSilu ? "silu" : "gelu_tanh");
  if (c.arch != Arch::kGpt2) {
    std::printf("rope_theta:      %g\n", c.rope_theta);
    std::printf("rope_dims:       %lld (%s pairs)\n", static_cast<long long>(c.rope_dims),
                c.rope_style == RopeStyle::kHalf ? "half-split" : "adjacent");
    const char* scaling[] = {"none", "linear", "llama3"};
    std::printf("rope_scaling:    %s", scaling[static_cast<int>(c.rope_scaling.type)]);
    if (c.rope_scaling.type != RopeScaling::Type::kNone) std::printf(" (factor %g)", c.rope_scaling.factor);
    std::printf("\n");
  }
  std::printf("sliding_window:  %lld\n", static_cast<long long>(c.sliding_window));
  std::printf("tied_embeddings: %s\n", c.tie_embeddings ? "yes" : "no");
  std::printf("bos_id:          %s\n", c.bos_id ? std::to_string(*c.bos_id).c_str() : "none");
  std::printf("eos_ids:         %s\n", FormatIdList(c.eos_ids).c_str());
  size_t params = 0;
  for (const auto& [name, t] : k.weights.tensors()) params += static_cast<size_t>(t.numel());
  std::printf("parameters:      %zu\n", params);
  std::printf("weight bytes:    %zu\n", k.weights.TotalBytes());
  std::printf("tensors:         %zu\n", k.weights.size());
  PrintStreamPlan(f, path, opts);
  if (!f.no_tensors) {
    for (const auto& [name, t] : k.weights.tensors())
      std::printf("  %-48s %-6s %s\n", EscapeForTerminal(name).c_str(), std::string(Name(t.dtype)).c_str(),
                  ShapeString(t.shape).c_str());
  }
  return 0;
}

}  // namespace

CommandFn AddInfoCommand(CLI::App& app) {
  auto f = std::make_shared<InfoFlags>();
  CLI::App* cmd = app.add_subcommand("info", "Print a checkpoint's architecture, hyperparameters and tensors");
  AddModelFlags(cmd, &f->model);
  cmd->add_flag("--no-tensors", f->no_tensors, "Omit the tensor list");
  return [f] { return Info(*f); };
}

}  // namespace fastgen::cli

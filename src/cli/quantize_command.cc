// `fastgen quantize IN OUT TYPE`: convert a checkpoint to a GGUF file of the given weight type,
// by rounding (default), importance-weighted rounding or GPTQ over calibration text.
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "core/mapped_file.h"
#include "io/checkpoint.h"
#include "models/quantize.h"
#include "tokenizer/tokenizer.h"

namespace fastgen::cli {
namespace {

constexpr const char* kTypeList = "F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K, Q4_K_M, Q4_K, Q4_0, Q3_K_M, Q3_K, Q2_K";

struct QuantizeFlags {
  std::string input, output, type;
  std::string method = "rtn";
  std::string calibration;
  int64_t calibration_tokens = 32768;
  int64_t calibration_ctx = 512;
  bool act_order = false;
  double damp = 0.01;
  int threads = 0;
  std::vector<std::string> override_kv;
};

void Bar(const char* what, size_t done, size_t total, const std::string& name) {
  constexpr int kWidth = 30;
  const int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
  std::fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu %-40.40s", what, filled, "##############################", kWidth - filled, "",
               done, total, EscapeForTerminal(name).c_str());
  if (done == total) std::fprintf(stderr, "\n");
}

// The calibration text, tokenized by the input model's own tokenizer: the first
// `tokens` tokens of the file (gzip or plain).
Expected<std::vector<int32_t>> CalibrationTokens(const QuantizeFlags& f) {
  FG_ASSIGN_OR_RETURN(auto tok, Tokenizer::Load(f.input));
  // Bytes per token are under 8 for every tokenizer fastgen knows on text; read a margin more.
  const size_t bytes = static_cast<size_t>(f.calibration_tokens) * 12 + 4096;
  FG_ASSIGN_OR_RETURN(std::string text, ReadTextPrefix(f.calibration, bytes, "calibration text"));
  if (text.empty()) return InvalidArgument(f.calibration + ": the calibration text is empty");
  EncodeOptions eo;
  eo.add_special_tokens = false;
  FG_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode(text, eo));
  if (static_cast<int64_t>(ids.size()) > f.calibration_tokens) ids.resize(static_cast<size_t>(f.calibration_tokens));
  if (static_cast<int64_t>(ids.size()) < f.calibration_ctx)
    return InvalidArgument(f.calibration + ": " + std::to_string(ids.size()) + " tokens of calibration text; at least one "
                           "sequence of --calibration-ctx " + std::to_string(f.calibration_ctx) + " is needed");
  if (static_cast<int64_t>(ids.size()) < f.calibration_tokens)
    Warn(f.calibration + ": " + std::to_string(ids.size()) + " tokens of calibration text, fewer than the " +
         std::to_string(f.calibration_tokens) + " asked for");
  return ids;
}

int Quantize(const QuantizeFlags& f) {
  // llama.cpp's file-type names: Q2_K, Q3_K_M, Q4_K_M and Q5_K_M are mixes; Q3_K, Q4_K and Q5_K
  // alone put every matrix in that type.
  std::string type_name = f.type;
  for (char& ch : type_name) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  bool mix_m = type_name == "Q2_K";
  if (type_name.size() == 6 && type_name.compare(4, 2, "_M") == 0 &&
      (type_name.rfind("Q3_K", 0) == 0 || type_name.rfind("Q4_K", 0) == 0 || type_name.rfind("Q5_K", 0) == 0)) {
    type_name.resize(4);
    mix_m = true;
  }
  const auto type = DTypeFromName(type_name);
  if (!type || *type == DType::kI32)
    return ReportError(InvalidArgument("unknown type '" + f.type + "' (" + std::string(kTypeList) + ")"));
  std::error_code ec;
  if (std::filesystem::equivalent(f.input, f.output, ec))
    return ReportError(InvalidArgument("the output " + f.output + " is the input file: fastgen reads the input "
                                       "while writing the output, so write to a new file"));
  auto overrides = ParseOverrides(f.override_kv);
  if (!overrides.ok()) return ReportError(overrides.status());
  QuantizeOptions o;
  o.gguf_overrides = *overrides;
  o.input = f.input;
  o.output = f.output;
  o.type = *type;
  o.mix_m = mix_m;
  o.method = f.method == "gptq" ? QuantMethod::kGptq : f.method == "imatrix" ? QuantMethod::kImatrix : QuantMethod::kRtn;
  const bool calibrated = o.method != QuantMethod::kRtn;
  if (calibrated && f.calibration.empty())
    return ReportError(InvalidArgument("--method " + f.method + " needs --calibration TEXT (never the evaluation text)"));
  if (!calibrated && !f.calibration.empty())
    return ReportError(InvalidArgument("--calibration is used by --method gptq or imatrix; --method rtn rounds without it"));
  if (f.act_order && o.method != QuantMethod::kGptq)
    return ReportError(InvalidArgument("--act-order applies to --method gptq"));
  if (calibrated && !IsQuantized(*type))
    return ReportError(InvalidArgument("--method " + f.method + " chooses quantized values; " + std::string(Name(*type)) +
                                       " stores the weights as they are (use a block type: Q8_0, Q6_K, Q4_K_M, Q4_0, ...)"));
  if (calibrated && f.calibration_tokens < f.calibration_ctx)
    return ReportError(InvalidArgument("--calibration-tokens " + std::to_string(f.calibration_tokens) +
                                       " is less than one --calibration-ctx sequence (" +
                                       std::to_string(f.calibration_ctx) + ")"));
  const bool tty = ::isatty(STDERR_FILENO);
  std::unique_ptr<ThreadPool> pool;
  if (calibrated) {
    // Refuse an architecture calibration cannot handle before reading any text.
    CheckpointOptions co;
    co.gguf_overrides = o.gguf_overrides;
    auto ckpt = OpenCheckpoint(f.input, co);
    if (!ckpt.ok()) return ReportError(ckpt.status());
    if (Status s = CheckCalibratable((*ckpt)->config); !s.ok()) return ReportError(s);
    auto tokens = CalibrationTokens(f);
    if (!tokens.ok()) return ReportError(tokens.status().WithContext("calibration"));
    o.calibration.tokens = std::move(*tokens);
    o.calibration.ctx = f.calibration_ctx;
    o.calibration.gptq.act_order = f.act_order;
    o.calibration.gptq.damp = f.damp;
    o.calibration.gguf_overrides = o.gguf_overrides;
    o.calibration.progress = [tty](const std::string& stage, size_t done, size_t total) {
      if (tty) Bar("calibrating", done, total, stage);
    };
    pool = std::make_unique<ThreadPool>(f.threads > 0 ? f.threads : ThreadPool::DefaultThreads());
    o.pool = pool.get();
  }
  o.progress = [tty](size_t done, size_t total, const std::string& name) {
    if (tty) Bar("writing", done, total, name);
  };
  const auto t0 = std::chrono::steady_clock::now();
  auto r = QuantizeCheckpoint(o);
  if (!r.ok()) return ReportError(r.status());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& note : r->notes) std::fprintf(stderr, "note: %s\n", EscapeForTerminal(note).c_str());
  std::fprintf(stderr, "wrote %s: %zu tensors, %.2f MiB -> %.2f MiB%s%s in %.1f s\n", EscapeForTerminal(f.output).c_str(),
               r->tensors, static_cast<double>(r->input_bytes) / (1 << 20), static_cast<double>(r->output_bytes) / (1 << 20),
               r->fallback_tensors ? (" (" + std::to_string(r->fallback_tensors) +
                                      " matrices kept in a wider type: rows not a multiple of the block)").c_str()
                                   : "",
               calibrated ? (", " + std::to_string(r->calibrated) + " matrices by " + f.method + " over " +
                             std::to_string(o.calibration.tokens.size()) + " calibration tokens").c_str()
                          : "",
               secs);
  return 0;
}

}  // namespace

CommandFn AddQuantizeCommand(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = app.add_subcommand("quantize", "Convert a model directory or GGUF file to a GGUF of another weight type");
  cmd->add_option("input", f->input, "Model directory (safetensors) or GGUF file")->required()->check(NonEmpty());
  cmd->add_option("output", f->output, "GGUF file to write")->required()->check(NonEmpty());
  cmd->add_option("type", f->type, kTypeList)->required();
  cmd->add_option("--method", f->method,
                  "rtn: round to nearest (default); imatrix: block scales weighted by each column's mean squared "
                  "input over --calibration text; gptq: GPTQ error compensation layer by layer")
      ->check(CLI::IsMember({"rtn", "imatrix", "gptq"}));
  cmd->add_option("--calibration", f->calibration, "Calibration text (plain or .gz; never the evaluation text)")
      ->check(NonEmpty());
  cmd->add_option("--calibration-tokens", f->calibration_tokens, "Tokens of calibration text used (default 32768)")
      ->check(IntRange(2, int64_t{1} << 24));
  cmd->add_option("--calibration-ctx", f->calibration_ctx, "Tokens per calibration sequence (default 512)")
      ->check(IntRange(2, int64_t{1} << 20));
  cmd->add_flag("--act-order", f->act_order, "GPTQ: quantize columns by decreasing input energy (block scales fixed first)");
  cmd->add_option("--damp", f->damp, "GPTQ: dampening added to the Hessian's diagonal, as a fraction of its mean (default 0.01)")
      ->check(FloatRange({0.0, 10.0, true}));
  cmd->add_option("-t,--threads", f->threads, "Threads for calibration (default: physical cores)")->check(IntRange(1, 1024));
  cmd->add_option("--override-kv", f->override_kv,
                  "Override a GGUF input's metadata KEY=VALUE (repeatable); the output carries the new value, "
                  "e.g. llama.rope.freq_base=100000 for a file whose converter dropped it");
  return [f] { return Quantize(*f); };
}

}  // namespace fastgen::cli

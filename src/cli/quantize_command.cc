// `fastgen quantize IN OUT TYPE`: convert a checkpoint to a GGUF file of the given weight type.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/common.h"
#include "cli/commands.h"
#include "core/diagnostics.h"
#include "models/quantize.h"

namespace fastgen::cli {
namespace {

struct QuantizeFlags {
  std::string input, output, type;
};

int Quantize(const QuantizeFlags& f) {
  const auto type = DTypeFromName(f.type);
  if (!type) return ReportError(InvalidArgument("unknown type '" + f.type + "' (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)"));
  std::error_code ec;
  if (std::filesystem::equivalent(f.input, f.output, ec))
    return ReportError(InvalidArgument("the output " + f.output + " is the input file: fastgen reads the input "
                                       "while writing the output, so write to a new file"));
  QuantizeOptions o;
  o.input = f.input;
  o.output = f.output;
  o.type = *type;
  const bool tty = ::isatty(STDERR_FILENO);
  o.progress = [tty](size_t done, size_t total, const std::string& name) {
    if (!tty) return;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / total);
    std::fprintf(stderr, "\r[%.*s%*s] %zu/%zu %-40.40s", filled, "##############################",
                 kWidth - filled, "", done, total, EscapeForTerminal(name).c_str());
    if (done == total) std::fprintf(stderr, "\n");
  };
  auto r = QuantizeCheckpoint(o);
  if (!r.ok()) return ReportError(r.status());
  for (const auto& note : r->notes) std::fprintf(stderr, "note: %s\n", EscapeForTerminal(note).c_str());
  std::fprintf(stderr, "wrote %s: %zu tensors, %.2f MiB -> %.2f MiB%s\n", EscapeForTerminal(f.output).c_str(), r->tensors,
               static_cast<double>(r->input_bytes) / (1 << 20), static_cast<double>(r->output_bytes) / (1 << 20),
               r->fallback_tensors ? (" (" + std::to_string(r->fallback_tensors) +
                                      " matrices kept in a wider type: rows not a multiple of the block)").c_str()
                                   : "");
  return 0;
}

}  // namespace

CommandFn AddQuantizeCommand(CLI::App& app) {
  auto f = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = app.add_subcommand("quantize", "Convert a model directory or GGUF file to a GGUF of another weight type");
  cmd->add_option("input", f->input, "Model directory (safetensors) or GGUF file")->required()->check(NonEmpty());
  cmd->add_option("output", f->output, "GGUF file to write")->required()->check(NonEmpty());
  cmd->add_option("type", f->type, "F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K")->required();
  return [f] { return Quantize(*f); };
}

}  // namespace fastgen::cli

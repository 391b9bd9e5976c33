// fastgen's command-line front end: parse flags, dispatch to a subcommand.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"fastgen: fast, exact inference for GPT-2, Llama, Mistral, Qwen, Gemma and Phi-3 "
               "checkpoints (safetensors directories and GGUF files)"};
  app.require_subcommand(1);
  fastgen::cli::CommandFn detokenize;
  const fastgen::cli::CommandFn run = fastgen::cli::AddRunCommand(app);
  const fastgen::cli::CommandFn info = fastgen::cli::AddInfoCommand(app);
  const fastgen::cli::CommandFn chat = fastgen::cli::AddChatCommand(app);
  const fastgen::cli::CommandFn bench = fastgen::cli::AddBenchCommand(app);
  const fastgen::cli::CommandFn quantize = fastgen::cli::AddQuantizeCommand(app);
  const fastgen::cli::CommandFn tokenize = fastgen::cli::AddTokenizeCommands(app, &detokenize);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  const std::string name = app.get_subcommands().front()->get_name();
  if (name == "run") return run();
  if (name == "info") return info();
  if (name == "bench") return bench();
  if (name == "chat") return chat();
  if (name == "quantize") return quantize();
  if (name == "tokenize") return tokenize();
  if (name == "detokenize") return detokenize();
  std::fprintf(stderr, "fastgen: unknown command %s\n", name.c_str());
  return 2;
}

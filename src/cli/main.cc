// fastgen's command-line front end: parse flags, dispatch to a subcommand.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <map>
#include <string>

#include "cli/commands.h"
#include "cli/common.h"
#include "core/diagnostics.h"

namespace {

// A parse error as every other error: "fastgen: error: ..." (escaped: it quotes the user's
// arguments), a pointer to --help, and the usage exit code. --help itself exits 0.
int ReportParseError(CLI::App& app, const CLI::ParseError& e) {
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
  std::string where = "fastgen";
  for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
  const std::string line = "fastgen: error: " + fastgen::EscapeForTerminal(e.what()) + "\n(see '" + where +
                           " --help')\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  return fastgen::cli::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fastgen: fast, exact inference for GPT-2, Llama, Mistral, Qwen, Gemma and Phi-3 "
               "checkpoints (safetensors directories and GGUF files)"};
  app.require_subcommand(1);
  fastgen::cli::CommandFn detokenize;
  std::map<std::string, fastgen::cli::CommandFn> commands;
  commands["run"] = fastgen::cli::AddRunCommand(app);
  commands["info"] = fastgen::cli::AddInfoCommand(app);
  commands["chat"] = fastgen::cli::AddChatCommand(app);
  commands["bench"] = fastgen::cli::AddBenchCommand(app);
  commands["quantize"] = fastgen::cli::AddQuantizeCommand(app);
  commands["perplexity"] = fastgen::cli::AddPerplexityCommand(app);
  commands["tokenize"] = fastgen::cli::AddTokenizeCommands(app, &detokenize);
  commands["detokenize"] = detokenize;
  commands["serve"] = fastgen::cli::AddServeCommand(app);
  commands["bench-serve"] = fastgen::cli::AddBenchServeCommand(app);

  // CLI11 reports a first argument that names no subcommand as "A subcommand is required";
  // say what was wrong instead.
  if (argc > 1 && argv[1][0] != '-' && !commands.count(argv[1])) {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    const std::string line = "fastgen: error: unknown command '" + fastgen::EscapeForTerminal(argv[1]) +
                             "' (commands: " + names + "; see 'fastgen --help')\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return fastgen::cli::kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ReportParseError(app, e);
  }
  const std::string name = app.get_subcommands().front()->get_name();
  try {
    return commands.at(name)();
  } catch (const std::exception& e) {
    // Library code returns errors as values; reaching here is a bug, but it must still end
    // with a message and an exit code rather than std::terminate's abort.
    const std::string line = "fastgen: internal error: " + fastgen::EscapeForTerminal(e.what()) + "\n";
    std::fwrite(line.data(), 1, line.size(), stderr);
    return fastgen::cli::kExitInternal;
  }
}

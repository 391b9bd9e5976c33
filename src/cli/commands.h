// Each subcommand registers its flags on the CLI11 app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace fastgen::cli {

using CommandFn = std::function<int()>;

CommandFn AddRunCommand(CLI::App& app);
CommandFn AddInfoCommand(CLI::App& app);
CommandFn AddBenchCommand(CLI::App& app);
CommandFn AddChatCommand(CLI::App& app);
CommandFn AddQuantizeCommand(CLI::App& app);
CommandFn AddPerplexityCommand(CLI::App& app);
CommandFn AddTokenizeCommands(CLI::App& app, CommandFn* detokenize);
CommandFn AddServeCommand(CLI::App& app);
CommandFn AddBenchServeCommand(CLI::App& app);

}  // namespace fastgen::cli

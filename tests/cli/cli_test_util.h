// Running the fastgen program as a user does, for the end-to-end CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace fastgen::testing {

struct CliResult {
  int exit_code = -1;  // 128 + signal when a signal ended it
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Runs `fastgen ARGS` through the shell, capturing stdout and stderr; stdin from `stdin_path`
// (default /dev/null). With a timeout, a run still going after that many seconds is killed
// (exit_code 137, as for any SIGKILL). It runs in a scratch working directory, so that files
// named by relative paths (the argument fuzzer's `--dump-logits off`) land there.
inline CliResult RunFastgen(const std::string& args, const std::string& stdin_path = "/dev/null",
                            int timeout_seconds = 0) {
  const std::string dir = ScratchDir("fastgen_cli_run");
  const std::string out = dir + "/stdout", err = dir + "/stderr", cwd = dir + "/cwd";
  std::filesystem::create_directories(cwd);
  const std::string prefix = timeout_seconds > 0 ? "timeout -s KILL " + std::to_string(timeout_seconds) + " " : "";
  const std::string cmd = "cd " + cwd + " && " + prefix + std::string(FASTGEN_BINARY) + " " + args + " >" + out +
                          " 2>" + err + " <" + stdin_path;
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

inline std::string JoinIds(const std::vector<int32_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
  return s;
}

}  // namespace fastgen::testing

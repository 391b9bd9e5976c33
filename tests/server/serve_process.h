// `fastgen serve` as a child process for the end-to-end server tests: started on a free port,
// its port read from the line it prints, stopped with SIGTERM (which must drain and exit 0).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_util.h"

namespace fastgen::testing {

class ServeProcess {
 public:
  // Starts `fastgen serve --port PORT ARGS` (0: a free port) and waits (up to a minute) for it
  // to listen; port() stays 0 when it exits instead.
  explicit ServeProcess(const std::vector<std::string>& args, int port = 0, bool expect_start = true) {
    log_ = ScratchDir("fastgen_serve") + "/serve_" + std::to_string(counter_++) + ".log";
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      ::dup2(fd, 1);
      std::vector<std::string> all = {FASTGEN_BINARY, "serve", "--port", std::to_string(port)};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(FASTGEN_BINARY, argv.data());
      ::_exit(127);
    }
    const std::regex listening("on http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 1200 && port_ == 0; ++i) {
      std::smatch m;
      const std::string log = Log();
      if (std::regex_search(log, m, listening)) port_ = std::stoi(m[1]);
      int status = 0;
      if (port_ == 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (expect_start) {
      EXPECT_GT(port_, 0) << "fastgen serve did not start:\n" << Log();
    }
  }

  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      EXPECT_EQ(WaitExit(120), 0) << Log();
    }
  }

  // SIGTERM, then the exit status (-1: still running after `seconds`, 128+N: signal N).
  int Terminate(int seconds = 120) {
    ::kill(pid_, SIGTERM);
    return WaitExit(seconds);
  }

  int port() const { return port_; }
  // Whether the process has ended (it exited instead of listening).
  bool exited() const { return pid_ < 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return ReadFileText(log_); }

 private:
  int WaitExit(int seconds) {
    for (int i = 0; i < seconds * 20; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

  static inline int counter_ = 0;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_;
};

}  // namespace fastgen::testing

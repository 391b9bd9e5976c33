// A fixed set of worker threads created once and reused for every parallel region, so the
// decode loop never creates threads. The calling thread takes part as worker 0.
//
// Work is split statically: Run(fn) calls fn(thread_index, n_threads) on every thread, and
// ParallelFor splits [0, n) into equal contiguous chunks. Static partitioning keeps each
// thread on the same weight rows every token, which keeps their cache lines warm.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace fastgen {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) on every thread and returns when all have finished.
  void Run(const std::function<void(int, int)>& fn);

  // Calls fn(begin, end) over disjoint chunks covering [0, n); chunks are multiples of `grain`
  // (except the last) so kernels can keep blocks whole.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // Physical cores of this machine (the default for -t).
  static int DefaultThreads();

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace fastgen

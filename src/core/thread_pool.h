// A fixed set of worker threads created once and reused for every parallel region, so the
// decode loop never creates threads. The calling thread takes part as worker 0.
//
// Run(fn) calls fn(thread_index, n_threads) on every thread. ParallelFor gives each thread a
// fixed contiguous share of [0, n) (the same rows every token, so their cache lines stay warm)
// but hands it out in a few chunks; a thread that finishes its share takes the remaining
// chunks of the others. A descheduled worker (another process on its core) therefore costs
// at most the chunk it is inside, not its whole share: the calling thread finishes the rest,
// and a worker that wakes after the region closed skips it instead of being waited for.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

  // Calls fn(begin, end) over disjoint chunks covering [0, n), possibly several per thread and
  // from any thread; chunks are multiples of `grain` (except the last) so kernels can keep
  // blocks whole. Returns when all of [0, n) is done.
  void ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // For the per-thread scratch buffers kernels grow on first use: true when `bytes` exceeds the
  // largest size reserved so far in this pool, which then becomes `bytes`. The caller then grows
  // every thread's buffer with Run(), since any thread may take part in a later ParallelFor.
  // Only the thread that dispatches work may call it.
  bool ReserveScratch(size_t bytes) {
    if (bytes <= scratch_reserved_) return false;
    scratch_reserved_ = bytes;
    return true;
  }

  // Physical cores of this machine (the default for -t).
  static int DefaultThreads();

 private:
  // One thread's share of a ParallelFor, on its own cache line: `next` is the first grain not
  // yet claimed, `end` one past its last.
  struct alignas(64) Share {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };

  void WorkerLoop(int index);
  // Opens a region running fn on the workers. `required`: every worker must run it (Run);
  // otherwise a worker that arrives after Close() skips it (ParallelFor).
  void Open(const std::function<void(int, int)>& fn, bool required);
  void CloseAndWait(bool required);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> shares_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  // Required regions: workers not finished yet.
  std::atomic<int> pending_{0};
  // Optional regions: (ticket << 32) | closed bit | workers inside. A worker enters only while
  // the ticket is the current region's and the region is open.
  std::atomic<uint64_t> entry_{0};
  std::atomic<bool> stop_{false};
  size_t scratch_reserved_ = 0;
};

}  // namespace fastgen

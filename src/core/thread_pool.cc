#include "core/thread_pool.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace fastgen {
namespace {

// Spinning briefly before sleeping keeps the wake-up latency of back-to-back parallel regions
// (dozens per token) in the sub-microsecond range without burning a core while idle.
constexpr int kSpinIterations = 1 << 14;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      CpuRelax();
      gen = generation_.load(std::memory_order_acquire);
    }
    while (gen == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(index, n_threads_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::Run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  fn(0, n_threads_);
  int left = pending_.load(std::memory_order_acquire);
  for (int spin = 0; left != 0 && spin < kSpinIterations; ++spin) {
    CpuRelax();
    left = pending_.load(std::memory_order_acquire);
  }
  while (left != 0) {
    pending_.wait(left, std::memory_order_acquire);
    left = pending_.load(std::memory_order_acquire);
  }
  job_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                             int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t n_grains = (n + grain - 1) / grain;
  const int64_t n_tasks = std::min<int64_t>(n_threads_, n_grains);
  if (n_tasks <= 1) {
    fn(0, n);
    return;
  }
  // One pointer captured, so the std::function Run() takes keeps it inline: ParallelFor never
  // allocates (it runs dozens of times per decoded token).
  struct Split {
    int64_t n, grain, n_grains, n_tasks;
    const std::function<void(int64_t, int64_t)>* fn;
  } split{n, grain, n_grains, n_tasks, &fn};
  Run([s = &split](int t, int) {
    if (t >= s->n_tasks) return;
    const int64_t g0 = s->n_grains * t / s->n_tasks;
    const int64_t g1 = s->n_grains * (t + 1) / s->n_tasks;
    const int64_t begin = g0 * s->grain;
    const int64_t end = std::min(s->n, g1 * s->grain);
    if (begin < end) (*s->fn)(begin, end);
  });
}

int ThreadPool::DefaultThreads() {
  // Count distinct (package, core) pairs: SMT siblings share execution units and only add
  // contention in bandwidth-bound decoding.
  std::set<std::pair<std::string, std::string>> cores;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned cpu = 0; cpu < hw; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return static_cast<int>(hw);
    cores.emplace(p, c);
  }
  return cores.empty() ? static_cast<int>(hw) : static_cast<int>(cores.size());
}

}  // namespace fastgen

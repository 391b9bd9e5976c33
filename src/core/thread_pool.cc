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

constexpr uint64_t kClosed = uint64_t{1} << 31;
constexpr uint64_t kRequired = uint64_t{1} << 30;
constexpr uint64_t kInsideMask = kRequired - 1;

// Chunks per thread share in ParallelFor: enough that a stalled thread leaves little behind,
// few enough that claiming them (one atomic add each) stays invisible.
constexpr int64_t kChunksPerShare = 8;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

uint64_t Ticket(uint64_t generation) { return (generation & 0xffffffffu) << 32; }

}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(std::max(1, n_threads)), shares_(new Share[static_cast<size_t>(n_threads_)]) {
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
    uint64_t e = entry_.load(std::memory_order_acquire);
    if ((e & ~(uint64_t{0xffffffff})) != Ticket(gen)) continue;  // a later region is already open
    if (e & kRequired) {
      (*job_)(index, n_threads_);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
      continue;
    }
    // Enter unless the region closed meanwhile (the caller finished all of it without us).
    bool entered = false;
    while ((e & ~(uint64_t{0xffffffff})) == Ticket(gen) && !(e & kClosed)) {
      if (entry_.compare_exchange_weak(e, e + 1, std::memory_order_acq_rel)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;
    (*job_)(index, n_threads_);
    const uint64_t before = entry_.fetch_sub(1, std::memory_order_acq_rel);
    if ((before & kClosed) && (before & kInsideMask) == 1) entry_.notify_one();
  }
}

void ThreadPool::Open(const std::function<void(int, int)>& fn, bool required) {
  job_ = &fn;
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  if (required) pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  entry_.store(Ticket(gen) | (required ? kRequired : 0), std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
}

void ThreadPool::CloseAndWait(bool required) {
  if (required) {
    int left = pending_.load(std::memory_order_acquire);
    for (int spin = 0; left != 0 && spin < kSpinIterations; ++spin) {
      CpuRelax();
      left = pending_.load(std::memory_order_acquire);
    }
    while (left != 0) {
      pending_.wait(left, std::memory_order_acquire);
      left = pending_.load(std::memory_order_acquire);
    }
  } else {
    // Workers still outside now never enter; wait only for those inside.
    uint64_t e = entry_.fetch_or(kClosed, std::memory_order_acq_rel) | kClosed;
    for (int spin = 0; (e & kInsideMask) != 0 && spin < kSpinIterations; ++spin) {
      CpuRelax();
      e = entry_.load(std::memory_order_acquire);
    }
    while ((e & kInsideMask) != 0) {
      entry_.wait(e, std::memory_order_acquire);
      e = entry_.load(std::memory_order_acquire);
    }
  }
  job_ = nullptr;
}

void ThreadPool::Run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  Open(fn, /*required=*/true);
  fn(0, n_threads_);
  CloseAndWait(/*required=*/true);
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
  for (int64_t t = 0; t < n_tasks; ++t) {
    shares_[t].next.store(n_grains * t / n_tasks, std::memory_order_relaxed);
    shares_[t].end = n_grains * (t + 1) / n_tasks;
  }
  // One pointer captured, so the std::function Open() takes keeps it inline: ParallelFor never
  // allocates (it runs dozens of times per decoded token).
  struct Split {
    int64_t n, grain, n_tasks, chunk;
    Share* shares;
    const std::function<void(int64_t, int64_t)>* fn;
  } split{n, grain, n_tasks, std::max<int64_t>(1, n_grains / (n_tasks * kChunksPerShare)),
          shares_.get(), &fn};
  const std::function<void(int, int)> body = [s = &split](int t, int) {
    if (t >= s->n_tasks) return;
    // Our own share first, then whatever is left of the others', in thread order.
    for (int64_t i = 0; i < s->n_tasks; ++i) {
      Share& share = s->shares[(t + i) % s->n_tasks];
      for (;;) {
        const int64_t g0 = share.next.fetch_add(s->chunk, std::memory_order_relaxed);
        if (g0 >= share.end) break;
        const int64_t g1 = std::min(share.end, g0 + s->chunk);
        (*s->fn)(g0 * s->grain, std::min(s->n, g1 * s->grain));
      }
    }
  };
  Open(body, /*required=*/false);
  body(0, n_threads_);
  CloseAndWait(/*required=*/false);
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

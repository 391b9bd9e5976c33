// ThreadPool: ParallelFor covers [0, n) exactly once in grain-aligned chunks, Run reaches every
// thread, and neither allocates (they run dozens of times per decoded token).
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <new>
#include <vector>

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

// Counts every allocation in this test binary.
// GCC 12 flags free() of memory from a replaced operator new as a mismatch (it is not: both
// replacements use malloc/free).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace fastgen {
namespace {

TEST(ThreadPool, ParallelForCoversRangeOnceInGrains) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 16, 17, 100, 1000}) {
      for (int64_t grain : {1, 4, 16}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.ParallelFor(n, [&](int64_t b, int64_t e) {
          EXPECT_LT(b, e);
          EXPECT_EQ(b % grain, 0) << "chunk starts inside a grain";
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        }, grain);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, RunReachesEveryThread) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> seen(4);
  pool.Run([&](int t, int n) {
    EXPECT_EQ(n, 4);
    seen[static_cast<size_t>(t)].fetch_add(1);
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

// A worker that stalls inside its first chunk (as when another process takes its core) must not
// hold its whole share hostage: the calling thread takes the chunks it has not started.
TEST(ThreadPool, ParallelForStealsFromAStalledWorker) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  for (int round = 0; round < 3; ++round) {
    std::vector<std::atomic<int>> hits(1024);
    std::atomic<int64_t> by_caller{0};
    std::atomic<bool> stalled{false};
    pool.ParallelFor(1024, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        // Let the worker reach its first chunk before going on (bounded, so a worker that is
        // never scheduled only weakens the test).
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!stalled.load() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
        by_caller.fetch_add(e - b);
      } else if (!stalled.exchange(true)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
      }
      for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    }, 16);
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    // The caller's own share is half; it also finished all but the stalled worker's chunk.
    EXPECT_TRUE(stalled.load());
    EXPECT_GE(by_caller.load(), 1024 - 1024 / 2 / 8) << "round " << round;
  }
}

// Run is not ParallelFor: every thread must run its part even when it arrives late.
TEST(ThreadPool, RunWaitsForEveryThreadAfterParallelFor) {
  ThreadPool pool(3);
  for (int round = 0; round < 200; ++round) {
    pool.ParallelFor(64, [](int64_t, int64_t) {}, 1);
    std::vector<std::atomic<int>> seen(3);
    pool.Run([&](int t, int) { seen[static_cast<size_t>(t)].fetch_add(1); });
    for (auto& s : seen) ASSERT_EQ(s.load(), 1) << "round " << round;
  }
}

TEST(ThreadPool, ParallelForDoesNotAllocate) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  int64_t a = 1, b = 2, c = 3;  // a lambda capturing several references, like real callers
  auto body = [&](int64_t lo, int64_t hi) { sum.fetch_add((hi - lo) * (a + b + c)); };
  const std::function<void(int64_t, int64_t)> fn = body;  // may allocate: outside the window
  const long before = g_allocations.load();
  for (int i = 0; i < 100; ++i) pool.ParallelFor(1000, fn, 16);
  EXPECT_EQ(g_allocations.load() - before, 0);
  EXPECT_EQ(sum.load(), 100 * 1000 * 6);
}

}  // namespace
}  // namespace fastgen

// Read bandwidth of this machine, measured the way ../shared/PEERS.md measured it: T threads
// summing a 1 GiB buffer, GB/s per pass, printed as median over passes. Generation on a CPU
// is bound by this figure: tokens/s ≤ bandwidth ÷ weight bytes read per token.
//
// Usage: membw [THREADS=2] [PASSES=9] [MIB=1024]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/thread_pool.h"

namespace {

// A plain read loop the compiler vectorizes; several accumulators hide the add latency.
__attribute__((noinline)) double SumRange(const double* p, size_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (size_t i = 0; i + 8 <= n; i += 8) {
    a0 += p[i]; a1 += p[i + 1]; a2 += p[i + 2]; a3 += p[i + 3];
    a4 += p[i + 4]; a5 += p[i + 5]; a6 += p[i + 6]; a7 += p[i + 7];
  }
  return a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int passes = argc > 2 ? std::atoi(argv[2]) : 9;
  const size_t mib = argc > 3 ? static_cast<size_t>(std::atol(argv[3])) : 1024;
  const size_t n = mib * (1u << 20) / sizeof(double);
  std::vector<double> buf(n, 1.0);
  fastgen::ThreadPool pool(threads);
  std::vector<double> gbs;
  volatile double sink = 0;
  for (int p = 0; p < passes; ++p) {
    std::vector<double> partial(static_cast<size_t>(threads), 0.0);
    const auto t0 = std::chrono::steady_clock::now();
    pool.Run([&](int t, int nt) {
      const size_t b = n * static_cast<size_t>(t) / static_cast<size_t>(nt);
      const size_t e = n * static_cast<size_t>(t + 1) / static_cast<size_t>(nt);
      partial[static_cast<size_t>(t)] = SumRange(buf.data() + b, e - b);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (double x : partial) sink = sink + x;
    gbs.push_back(static_cast<double>(n * sizeof(double)) / s / 1e9);
  }
  std::sort(gbs.begin(), gbs.end());
  std::printf("read bandwidth, %d threads, %zu MiB: median %.1f GB/s (min %.1f, max %.1f, %d passes)\n", threads,
              mib, gbs[gbs.size() / 2], gbs.front(), gbs.back(), passes);
  return 0;
}

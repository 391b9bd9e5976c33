// Times kernels::MatMul on the TinyLlama-1.1B matrix shapes, per weight dtype and ISA, for n = 1
// (decode: bandwidth-bound, reported as GB/s of weights read) and n = 512 (prefill:
// compute-bound, reported as GFLOP/s = 2·m·k·n / s). Medians over repetitions. A benchmark, not a
// test: numbers vary with the machine's memory bandwidth, which drifts on shared VMs, so it also
// samples a plain 2-thread read bandwidth to compare against.
//
// Usage: matmul_bench [-t THREADS] [-r REPS] [--types F16,Q8_0,...] [--isas avx2,avx512]
//                     [--n 1,512] [--hot] [--shapes tinyllama|fg-target|fg-draft]
//                     [--path auto|decode|gemm]   (which kernels; auto: by n)
//                     [--repack]   (Q8_0 / Q4_0 interleaved 16 rows at a time, as models load them)
// fg-target's shapes (384 wide) are those of speculative verification on the bundled model,
// fg-draft's (192 wide) those of its draft model, which runs from the caches (--hot).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/repack.h"
#include "kernels/matmul.h"
#include "kernels/reference/quant_blocks.h"

namespace fastgen {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Random weights with valid, finite scales (quant bytes uniformly random).
void FillRandom(DType t, uint8_t* buf, size_t bytes, std::mt19937& rng) {
  std::uniform_int_distribution<uint32_t> word;
  for (size_t i = 0; i + 4 <= bytes; i += 4) {
    const uint32_t v = word(rng);
    std::memcpy(buf + i, &v, 4);
  }
  auto put16 = [&](size_t off, float v) {
    const uint16_t h = F32ToF16(v);
    std::memcpy(buf + off, &h, 2);
  };
  if (t == DType::kF32) {
    for (size_t i = 0; i + 4 <= bytes; i += 4) {
      const float v = static_cast<float>(static_cast<int>(buf[i]) - 128) / 1024.0f;
      std::memcpy(buf + i, &v, 4);
    }
    return;
  }
  if (t == DType::kF16 || t == DType::kBF16) {
    for (size_t i = 0; i + 2 <= bytes; i += 2) {
      const float v = static_cast<float>(static_cast<int>(buf[i]) - 128) / 1024.0f;
      const uint16_t h = t == DType::kF16 ? F32ToF16(v) : F32ToBF16(v);
      std::memcpy(buf + i, &h, 2);
    }
    return;
  }
  const size_t bb = static_cast<size_t>(Info(t).block_bytes);
  for (size_t off = 0; off + bb <= bytes; off += bb) {
    switch (t) {
      case DType::kQ8_0:
      case DType::kQ4_0: put16(off, 0.01f); break;
      case DType::kQ4_K:
        put16(off + offsetof(block_q4_K, d), 0.001f);
        put16(off + offsetof(block_q4_K, dmin), 0.001f);
        break;
      case DType::kQ6_K: put16(off + offsetof(block_q6_K, d), 0.0001f); break;
      default: break;
    }
  }
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Read bandwidth of this machine now: sum of 1 GiB of floats, split across the pool.
double ReadBandwidthGBs(ThreadPool& pool, const std::vector<float>& big) {
  std::vector<double> sums(static_cast<size_t>(pool.size()), 0.0);
  const auto t0 = Clock::now();
  pool.ParallelFor(static_cast<int64_t>(big.size()), [&](int64_t b, int64_t e) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t i = b; i + 4 <= e; i += 4) {
      s0 += big[static_cast<size_t>(i)];
      s1 += big[static_cast<size_t>(i) + 1];
      s2 += big[static_cast<size_t>(i) + 2];
      s3 += big[static_cast<size_t>(i) + 3];
    }
    sums[static_cast<size_t>(b * pool.size() / static_cast<int64_t>(big.size()))] = s0 + s1 + s2 + s3;
  }, 1 << 16);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  volatile double sink = sums[0];
  (void)sink;
  return static_cast<double>(big.size() * sizeof(float)) / s / 1e9;
}

struct Shape {
  int64_t k, m;
};

int Main(int argc, char** argv) {
  int threads = 2, reps = 0;
  bool hot = false;  // reuse one copy of the weights (cache-resident when small): kernel speed
  std::vector<std::string> types = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K"};
  std::vector<std::string> isas;
  std::vector<int64_t> ns = {1, 512};
  std::string shape_set = "tinyllama";
  kernels::MatMulPath path = kernels::MatMulPath::kAuto;
  bool repack = false;  // --repack: the interleaved copy the models use (kernels/cpu/repack.h)
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (a == "-t") { threads = std::atoi(v); ++i; }
    else if (a == "-r") { reps = std::atoi(v); ++i; }
    else if (a == "--hot") { hot = true; }
    else if (a == "--repack") { repack = true; }
    else if (a == "--types") { types = Split(v); ++i; }
    else if (a == "--isas") { isas = Split(v); ++i; }
    else if (a == "--shapes") { shape_set = v; ++i; }
    else if (a == "--n") { ns.clear(); for (auto& s : Split(v)) ns.push_back(std::atoll(s.c_str())); ++i; }
    else if (a == "--path" && (std::string(v) == "decode" || std::string(v) == "gemm" || std::string(v) == "auto")) {
      path = std::string(v) == "decode" ? kernels::MatMulPath::kDecode
             : std::string(v) == "gemm" ? kernels::MatMulPath::kGemm : kernels::MatMulPath::kAuto;
      ++i;
    }
    else { std::fprintf(stderr, "usage: %s [-t T] [-r REPS] [--types A,B] [--isas avx2,avx512] [--n 1,512] [--hot] [--shapes tinyllama|fg-target|fg-draft] [--path auto|decode|gemm]\n", argv[0]); return 2; }
  }
  if (isas.empty())
    for (auto isa : kernels::cpu::SupportedIsas())
      if (isa != kernels::cpu::Isa::kReference) isas.emplace_back(kernels::cpu::IsaName(isa));
  std::vector<Shape> shapes;
  if (shape_set == "tinyllama") {
    shapes = {{2048, 2048}, {2048, 256}, {2048, 5632}, {5632, 2048}, {2048, 32000}};
  } else if (shape_set == "fg-target") {
    shapes = {{384, 384}, {384, 128}, {384, 1024}, {1024, 384}, {384, 8192}};
  } else if (shape_set == "fg-draft") {
    shapes = {{192, 192}, {192, 64}, {192, 512}, {512, 192}, {192, 8192}};
  } else {
    std::fprintf(stderr, "--shapes: expected tinyllama, fg-target or fg-draft, got %s\n", shape_set.c_str());
    return 2;
  }
  ThreadPool pool(threads);
  std::mt19937 rng(7);
  std::vector<float> big(size_t{1} << 28, 1.0f);  // 1 GiB for the bandwidth sample
  std::vector<double> bw;
  for (int i = 0; i < 5; ++i) bw.push_back(ReadBandwidthGBs(pool, big));
  std::printf("threads %d, read bandwidth sample (1 GiB sum, median of 5): %.1f GB/s\n", threads,
              Median(bw));
  // "cpu" columns divide by the CPU time each thread got (process CPU time / threads): on a
  // shared, oversubscribed VM they show what the kernel does per core-second it actually ran.
  std::printf("%-7s %-6s %5s %12s %8s %8s %8s %10s %10s\n", "isa", "dtype", "n", "k->m", "ms",
              "GB/s", "GB/cpu-s", "GFLOP/s", "GFLOP/cpu-s");
  for (const std::string& isa_name : isas) {
    const auto isa = kernels::cpu::IsaFromName(isa_name);
    if (!isa || !kernels::cpu::ForceIsa(*isa)) {
      std::printf("%s: not supported on this CPU, skipped\n", isa_name.c_str());
      continue;
    }
    for (const std::string& tname : types) {
      const auto t = DTypeFromName(tname);
      if (!t) { std::printf("unknown dtype %s\n", tname.c_str()); continue; }
      for (const Shape& s : shapes) {
        const size_t bytes = *RowBytes(*t, s.k) * static_cast<size_t>(s.m);
        // Enough copies that one pass over them overflows the caches, so decode reads DRAM.
        const size_t copies = hot ? 1 : std::max<size_t>(1, (size_t{256} << 20) / bytes + 1);
        std::vector<uint8_t> w_buf(bytes * copies);
        FillRandom(*t, w_buf.data(), w_buf.size(), rng);
        const bool packed = repack && kernels::cpu::RepackSupported(*t) && s.k % 32 == 0;
        const size_t group = packed ? kernels::cpu::RepackedGroupBytes(*t, s.k) : 0;
        const size_t packed_bytes = group * static_cast<size_t>((s.m + 15) / 16);
        std::vector<uint8_t> p_buf(packed ? packed_bytes * copies + 64 : 0);
        uint8_t* p_base = packed ? p_buf.data() + (64 - reinterpret_cast<uintptr_t>(p_buf.data()) % 64) % 64 : nullptr;
        for (size_t c = 0; packed && c < copies; ++c)
          kernels::cpu::Repack(*t, w_buf.data() + bytes * c, s.m, s.k, bytes / static_cast<size_t>(s.m),
                               p_base + packed_bytes * c);
        for (int64_t n : ns) {
          std::vector<float> x(static_cast<size_t>(n * s.k));  // [n, k]
          std::normal_distribution<float> normal;
          for (auto& v : x) v = normal(rng);
          std::vector<float> y(static_cast<size_t>(n * s.m));  // [n, m]
          const int r = reps > 0 ? reps : (n == 1 ? 30 : 5);
          std::vector<double> times, cpu_times;
          for (int i = -1; i < r; ++i) {  // one warm-up run (grows scratch buffers)
            TensorView w;
            w.dtype = *t;
            w.shape = {s.m, s.k};
            w.data = w_buf.data() + bytes * (static_cast<size_t>(i + 1) % copies);
            w.nbytes = bytes;
            if (packed) {
              w.packed = p_base + packed_bytes * (static_cast<size_t>(i + 1) % copies);
              w.packed_group_bytes = group;
            }
            const auto t0 = Clock::now();
            const std::clock_t c0 = std::clock();
            kernels::MatMul(w, x.data(), n, y.data(), s.m, pool, path);
            const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
            const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
            if (i >= 0) {
              times.push_back(sec);
              cpu_times.push_back(cpu / threads);
            }
          }
          const double sec = Median(times);
          const double cpu = Median(cpu_times);
          char shape[32];
          std::snprintf(shape, sizeof(shape), "%lld->%lld", static_cast<long long>(s.k),
                        static_cast<long long>(s.m));
          const double flop = 2.0 * static_cast<double>(s.m * s.k * n);
          std::printf("%-7s %-6s %5lld %12s %8.3f %8.1f %8.1f %10.1f %10.1f\n", isa_name.c_str(),
                      tname.c_str(), static_cast<long long>(n), shape, sec * 1e3,
                      static_cast<double>(bytes) / sec / 1e9, static_cast<double>(bytes) / cpu / 1e9,
                      flop / sec / 1e9, flop / cpu / 1e9);
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace fastgen

int main(int argc, char** argv) { return fastgen::Main(argc, argv); }
